using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Framing;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>The fixed-header checks on their own: the flags each packet type may carry after CONNECT.</summary>
public sealed class FixedHeaderRulesTests
{
    [Theory]
    [InlineData(0x30)] // PUBLISH QoS 0
    [InlineData(0x31)] // PUBLISH QoS 0, retain
    [InlineData(0x3A)] // PUBLISH QoS 1, DUP
    [InlineData(0x34)] // PUBLISH QoS 2
    [InlineData(0x40)] // PUBACK
    [InlineData(0x62)] // PUBREL
    [InlineData(0x82)] // SUBSCRIBE
    [InlineData(0xA2)] // UNSUBSCRIBE
    [InlineData(0xC0)] // PINGREQ
    [InlineData(0xE0)] // DISCONNECT
    public void Allowed_headers_pass(int header) =>
        FixedHeaderRules.Validate((MqttControlPacketType)(header >> 4), (byte)header, isV5: false);

    [Theory]
    [InlineData(0x36)] // PUBLISH QoS 3
    [InlineData(0x38)] // PUBLISH QoS 0 with DUP
    [InlineData(0x60)] // PUBREL without its reserved 0x02
    [InlineData(0x80)] // SUBSCRIBE without its reserved 0x02
    [InlineData(0xA0)] // UNSUBSCRIBE without its reserved 0x02
    [InlineData(0x41)] // PUBACK with a reserved flag
    [InlineData(0xC8)] // PINGREQ with a reserved flag
    [InlineData(0x00)] // reserved packet type 0
    public void Malformed_headers_are_refused(int header)
    {
        var error = Assert.Throws<MqttProtocolError>(() => FixedHeaderRules.Validate((MqttControlPacketType)(header >> 4), (byte)header, isV5: true));
        Assert.Equal(MqttDisconnectReasonCode.MalformedPacket, error.ReasonCode);
    }

    [Fact]
    public void Auth_is_a_reserved_type_before_MQTT_5()
    {
        FixedHeaderRules.Validate(MqttControlPacketType.Auth, 0xF0, isV5: true);
        var error = Assert.Throws<MqttProtocolError>(() => FixedHeaderRules.Validate(MqttControlPacketType.Auth, 0xF0, isV5: false));
        Assert.Equal(MqttDisconnectReasonCode.MalformedPacket, error.ReasonCode);
    }
}
