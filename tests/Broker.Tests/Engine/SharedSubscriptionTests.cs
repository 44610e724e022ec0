using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// MQTT 5 §4.8.2: shared subscriptions (<c>$share/{group}/{filter}</c>). 3.1.1 has no shared subscriptions in the
/// standard, but the engine accepts them from 3.1.1 clients as Mosquitto does, so both versions are covered.
/// </summary>
public sealed class SharedSubscriptionTests
{
    const MqttQualityOfServiceLevel Qos1 = MqttQualityOfServiceLevel.AtLeastOnce;

    static async Task<RawMqttClient[]> MembersAsync(EngineServer server, MqttProtocolVersion version, int count, string filter = "$share/g/t/#")
    {
        var members = new RawMqttClient[count];
        for (var i = 0; i < count; i++)
        {
            (members[i], _) = await RawMqttClient.ConnectAsync(server.Port, $"member{i}", version);
            await members[i].SubscribeGrantedAsync(1, filter, Qos1);
        }
        return members;
    }

    static async Task PublishManyAsync(RawMqttClient publisher, int count, string prefix = "m")
    {
        for (var i = 0; i < count; i++)
        {
            await publisher.PublishAsync($"t/{i % 3}", $"{prefix}{i}", Qos1, packetId: (ushort)(i + 1));
        }
    }

    /// <summary>
    /// Reads what each member is sent (acknowledging it), visiting the members in turn, until <paramref name="expected"/>
    /// messages have arrived over the group or the deadline passes; then proves no member gets anything more.
    /// </summary>
    static async Task<List<string>[]> CollectAsync(RawMqttClient[] members, int expected)
    {
        var perMember = members.Select(_ => new List<string>()).ToArray();
        var total = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (total < expected && DateTime.UtcNow < deadline)
        {
            for (var i = 0; i < members.Length && total < expected; i++)
            {
                while (total < expected)
                {
                    MqttPublishPacket publish;
                    try
                    {
                        publish = await members[i].ReceivePublishAsync(TimeSpan.FromMilliseconds(50));
                    }
                    catch (TimeoutException)
                    {
                        break;
                    }
                    perMember[i].Add(publish.Text());
                    total++;
                }
            }
        }
        foreach (var member in members)
        {
            await member.ExpectNothingBeforeMarkerAsync();
        }
        return perMember;
    }

    static void AssertEachExactlyOnce(List<string>[] perMember, IEnumerable<string> expected)
    {
        var all = perMember.SelectMany(m => m).ToList();
        Assert.Equal(expected.OrderBy(x => x, StringComparer.Ordinal), all.OrderBy(x => x, StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Each_message_goes_to_exactly_one_member_of_the_group(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var members = await MembersAsync(server, version, 3);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);

        await PublishManyAsync(pub, 30);
        var perMember = await CollectAsync(members, 30);

        AssertEachExactlyOnce(perMember, Enumerable.Range(0, 30).Select(i => $"m{i}"));
        Assert.All(perMember, received => Assert.NotEmpty(received));
        await pub.DisposeAsync();
        foreach (var m in members) await m.DisposeAsync();
    }

    [Fact]
    public async Task Messages_to_one_member_keep_their_publish_order()
    {
        await using var server = EngineServer.Start();
        var members = await MembersAsync(server, MqttProtocolVersion.V500, 2);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await PublishManyAsync(pub, 20);
        var perMember = await CollectAsync(members, 20);
        foreach (var received in perMember)
        {
            var numbers = received.Select(s => int.Parse(s[1..])).ToList();
            Assert.Equal(numbers.Order(), numbers);
        }
        await pub.DisposeAsync();
        foreach (var m in members) await m.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Remaining_members_get_every_message_after_a_member_unsubscribes(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var members = await MembersAsync(server, version, 3);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);

        await members[0].UnsubscribeAsync(2, "$share/g/t/#");
        await PublishManyAsync(pub, 20);
        var perMember = await CollectAsync(members, 20);

        Assert.Empty(perMember[0]);
        AssertEachExactlyOnce(perMember, Enumerable.Range(0, 20).Select(i => $"m{i}"));
        await pub.DisposeAsync();
        foreach (var m in members) await m.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Remaining_members_get_every_message_after_a_member_disconnects_and_its_session_ends(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var members = await MembersAsync(server, version, 3);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);

        await members[0].DisconnectAsync();
        await Wait.UntilAsync(() => server.Broker.SessionCount == 3, TimeSpan.FromSeconds(5), "the leaving member's session to end");
        await PublishManyAsync(pub, 20);
        var perMember = await CollectAsync(members[1..], 20);

        AssertEachExactlyOnce(perMember, Enumerable.Range(0, 20).Select(i => $"m{i}"));
        await pub.DisposeAsync();
        foreach (var m in members[1..]) await m.DisposeAsync();
    }

    [Fact]
    public async Task Remaining_member_gets_every_message_after_a_member_drops_without_disconnect()
    {
        await using var server = EngineServer.Start();
        var members = await MembersAsync(server, MqttProtocolVersion.V500, 2);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");

        await members[0].DisposeAsync();
        await Wait.UntilAsync(() => server.Broker.SessionCount == 2, TimeSpan.FromSeconds(5), "the dropped member's session to end");
        await PublishManyAsync(pub, 10);
        var received = await members[1].ReceivePublishesAsync(10);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"m{i}"), received.Select(p => p.Text()));
        await members[1].ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await members[1].DisposeAsync();
    }

    [Fact]
    public async Task Unacknowledged_messages_of_a_member_whose_session_ends_go_to_another_member()
    {
        // MQTT 5 §4.8.2: if the chosen member's session ends before it acknowledged a QoS 1 message, the Server SHOULD send it to another member
        await using var server = EngineServer.Start();
        var members = await MembersAsync(server, MqttProtocolVersion.V500, 2);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await PublishManyAsync(pub, 10);

        // member 0 receives its share (all of it: the publisher's marker follows it) but never acknowledges it, then
        // drops (session expiry 0: the session ends)
        var unacknowledged = (await members[0].ReceiveUntilMarkerAsync(pub)).Select(p => p.Text()).ToList();
        Assert.NotEmpty(unacknowledged);
        await members[0].DisposeAsync();

        var received = await members[1].ReceivePublishesAsync(10);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"m{i}").Order(StringComparer.Ordinal), received.Select(p => p.Text()).Order(StringComparer.Ordinal));
        await members[1].ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await members[1].DisposeAsync();
    }

    [Fact]
    public async Task Online_members_are_preferred_over_a_member_whose_persistent_session_is_offline()
    {
        await using var server = EngineServer.Start();
        var (offline, _) = await RawMqttClient.ConnectAsync(server.Port, "offline", cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        await offline.SubscribeGrantedAsync(1, "$share/g/t/#", Qos1);
        await offline.DisconnectAsync();
        var (online, _) = await RawMqttClient.ConnectAsync(server.Port, "online");
        await online.SubscribeGrantedAsync(1, "$share/g/t/#", Qos1);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");

        await PublishManyAsync(pub, 10);
        var received = await online.ReceivePublishesAsync(10);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"m{i}"), received.Select(p => p.Text()));

        var (back, connAck) = await RawMqttClient.ConnectAsync(server.Port, "offline", cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        Assert.True(connAck.IsSessionPresent);
        await back.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await online.DisposeAsync();
        await back.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Shared_and_non_shared_subscriptions_of_different_clients_both_get_the_message(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (shared, _) = await RawMqttClient.ConnectAsync(server.Port, "shared", version);
        await shared.SubscribeGrantedAsync(1, "$share/g/t/#", Qos1);
        var (plain, _) = await RawMqttClient.ConnectAsync(server.Port, "plain", version);
        await plain.SubscribeGrantedAsync(1, "t/#", Qos1);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);

        await pub.PublishAsync("t/x", "both", Qos1);
        var toShared = await shared.ReceivePublishAsync();
        var toPlain = await plain.ReceivePublishAsync();
        Assert.Equal("t/x", toShared.Topic);
        Assert.Equal("both", toShared.Text());
        Assert.Equal("both", toPlain.Text());
        await shared.ExpectNothingBeforeMarkerAsync();
        await plain.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await shared.DisposeAsync();
        await plain.DisposeAsync();
    }

    [Fact]
    public async Task Different_share_groups_each_get_one_copy()
    {
        await using var server = EngineServer.Start();
        var (a, _) = await RawMqttClient.ConnectAsync(server.Port, "a");
        await a.SubscribeGrantedAsync(1, "$share/one/t/#", Qos1);
        var (b, _) = await RawMqttClient.ConnectAsync(server.Port, "b");
        await b.SubscribeGrantedAsync(1, "$share/two/t/#", Qos1);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");

        await pub.PublishAsync("t/x", "each group", Qos1);
        Assert.Equal("each group", (await a.ReceivePublishAsync()).Text());
        Assert.Equal("each group", (await b.ReceivePublishAsync()).Text());
        await pub.DisposeAsync();
        await a.DisposeAsync();
        await b.DisposeAsync();
    }

    [Fact]
    public async Task Retained_messages_are_not_sent_when_a_shared_subscription_is_made()
    {
        await using var server = EngineServer.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("t/x", "retained", Qos1, retain: true);

        var (member, _) = await RawMqttClient.ConnectAsync(server.Port, "member");
        await member.SubscribeGrantedAsync(1, "$share/g/t/#", Qos1);
        await member.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await member.DisposeAsync();
    }

    [Fact]
    public async Task No_local_on_a_shared_subscription_is_a_protocol_error()
    {
        await using var server = EngineServer.Start();
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "c");
        await client.SendAsync(new MqttSubscribePacket
        {
            PacketIdentifier = 1,
            TopicFilters = [new MqttTopicFilter { Topic = "$share/g/t", QualityOfServiceLevel = Qos1, NoLocal = true }],
        });
        var disconnect = await client.ExpectClosedAsync();
        Assert.Equal(MqttDisconnectReasonCode.ProtocolError, disconnect?.ReasonCode);
        await client.DisposeAsync();
    }

    [Theory]
    [InlineData("$share//t")]
    [InlineData("$share/g+/t")]
    [InlineData("$share/g")]
    public async Task Malformed_share_filter_gets_topic_filter_invalid(string filter)
    {
        await using var server = EngineServer.Start();
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "c");
        var subAck = await client.SubscribeAsync(1, filter, Qos1);
        Assert.Equal(MqttSubscribeReasonCode.TopicFilterInvalid, Assert.Single(subAck.ReasonCodes));
        await client.DisposeAsync();
    }
}
