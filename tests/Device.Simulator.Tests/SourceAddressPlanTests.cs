using System.Net;
using IotRealtime.Device.Simulator.Connections;

namespace IotRealtime.Device.Simulator.Tests;

public sealed class SourceAddressPlanTests
{
    [Fact]
    public void Connections_are_sharded_per_source_address_in_index_order()
    {
        var plan = new SourceAddressPlan(IPAddress.Parse("127.0.0.2"), perSource: 10_000, connections: 25_000);

        Assert.Equal(["127.0.0.2", "127.0.0.3", "127.0.0.4"], plan.EndPoints.Select(e => e.Address.ToString()));
        Assert.All(plan.EndPoints, e => Assert.Equal(0, e.Port));
        Assert.Equal("127.0.0.2", plan.For(0)!.Address.ToString());
        Assert.Equal("127.0.0.2", plan.For(9_999)!.Address.ToString());
        Assert.Equal("127.0.0.3", plan.For(10_000)!.Address.ToString());
        Assert.Equal("127.0.0.4", plan.For(24_999)!.Address.ToString());
    }

    [Fact]
    public void An_exact_multiple_needs_no_extra_address()
    {
        var plan = new SourceAddressPlan(IPAddress.Parse("127.0.0.2"), perSource: 100, connections: 200);
        Assert.Equal(2, plan.EndPoints.Count);
    }

    [Fact]
    public void Without_a_base_the_os_chooses()
    {
        var plan = new SourceAddressPlan(null, perSource: 10, connections: 100);
        Assert.Empty(plan.EndPoints);
        Assert.Null(plan.For(55));
    }
}
