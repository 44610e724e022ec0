using System.Buffers;
using System.Globalization;
using System.Text;
using IotRealtime.Telemetry.Influx;

namespace IotRealtime.Telemetry.Tests.Influx;

public sealed class LineProtocolTests
{
    static string Encode(Action<ArrayBufferWriter<byte>> write)
    {
        var w = new ArrayBufferWriter<byte>();
        write(w);
        return Encoding.UTF8.GetString(w.WrittenSpan);
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("a b", @"a\ b")]
    [InlineData("a,b", @"a\,b")]
    [InlineData("a=b", @"a\=b")]
    [InlineData("say \"hi\"", "say\\ \"hi\"")]
    [InlineData("température,°C", @"température\,°C")]
    [InlineData(@"a\b", @"a\b")]
    public void Tag_keys_values_and_field_keys_escape_comma_equals_and_space(string name, string expected)
    {
        Assert.Null(LineProtocol.CheckName(name));
        Assert.Equal(expected, Encode(w => LineProtocol.AppendName(w, name)));
    }

    [Fact]
    public void Measurement_escapes_comma_and_space_but_not_equals()
    {
        Assert.Equal(@"my\ m\,x=y", Encode(w => LineProtocol.AppendMeasurement(w, "my m,x=y")));
    }

    [Fact]
    public void String_fields_are_quoted_with_quotes_and_backslashes_escaped()
    {
        Assert.Equal("\"a \\\"b\\\" c\\\\d\nü\"", Encode(w => LineProtocol.AppendString(w, "a \"b\" c\\d\nü")));
    }

    [Theory]
    [InlineData(21.5)]
    [InlineData(0.1)]
    [InlineData(-0.000015)]
    [InlineData(1e20)]
    [InlineData(5e-324)]
    [InlineData(double.MaxValue)]
    [InlineData(42.0)]
    public void Floats_are_written_in_a_form_that_reads_back_as_the_same_double(double value)
    {
        var text = Encode(w => LineProtocol.AppendFloat(w, value));
        Assert.Equal(value, double.Parse(text, CultureInfo.InvariantCulture));
        Assert.DoesNotContain(',', text);
    }

    [Theory]
    [InlineData(double.NaN, "is NaN")]
    [InlineData(double.PositiveInfinity, "is infinite")]
    [InlineData(double.NegativeInfinity, "is infinite")]
    public void NaN_and_infinity_are_refused(double value, string reason)
    {
        Assert.Equal(reason, LineProtocol.CheckValue(value));
        Assert.Throws<ArgumentOutOfRangeException>(() => Encode(w => LineProtocol.AppendFloat(w, value)));
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("a\nb", "contains a line break")]
    [InlineData("a\r", "contains a line break")]
    [InlineData(@"a\", "ends with a backslash")]
    [InlineData(@"a\,b", "has a backslash before ','")]
    [InlineData(@"a\ b", "has a backslash before ' '")]
    [InlineData(@"a\\b", @"has a backslash before '\'")]
    public void Names_line_protocol_cannot_carry_unchanged_are_refused(string name, string reason)
    {
        Assert.Equal(reason, LineProtocol.CheckName(name));
    }

    [Fact]
    public void A_measurement_starting_with_a_hash_is_refused_because_it_would_be_a_comment()
    {
        Assert.NotNull(LineProtocol.CheckMeasurement("#telemetry"));
        Assert.Null(LineProtocol.CheckMeasurement("telemetry#1"));
    }

    [Fact]
    public void Timestamps_are_nanoseconds_since_the_epoch()
    {
        var time = new DateTimeOffset(2026, 12, 1, 13, 0, 0, TimeSpan.FromHours(1)).AddTicks(1234567);
        Assert.Equal(1_796_126_400_123_456_700, LineProtocol.ToUnixNanoseconds(time));
    }

    [Fact]
    public void Quoting_for_InfluxQL_and_Flux_escapes_what_would_end_the_literal()
    {
        Assert.Equal(@"'it\'s a \\ test'", InfluxQl.Literal(@"it's a \ test"));
        Assert.Equal("\"a \\\"b\\\"\"", InfluxQl.Identifier("a \"b\""));
        Assert.Equal("\"x \\${y} \\\"z\\\" \\\\\"", InfluxQl.FluxString("x ${y} \"z\" \\"));
    }

    [Fact]
    public void Flux_csv_tables_with_their_own_headers_and_quoted_fields_are_read()
    {
        var csv = ",result,table,topic,partition,_value\r\n,_result,0,t1,0,42\r\n,_result,1,\"t,2\",3,\"7\"\r\n\r\n,result,table,x\r\n,_result,2,\"a \"\"q\"\"\"\r\n";
        var rows = FluxCsv.Parse(csv);
        Assert.Equal(3, rows.Count);
        Assert.Equal(("t1", "0", "42"), (rows[0]["topic"], rows[0]["partition"], rows[0]["_value"]));
        Assert.Equal(("t,2", "3", "7"), (rows[1]["topic"], rows[1]["partition"], rows[1]["_value"]));
        Assert.Equal("a \"q\"", rows[2]["x"]);
    }
}
