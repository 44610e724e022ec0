namespace IotRealtime.Broker.Engine.Pipeline;

/// <summary>
/// What an accepted PUBLISH goes through between authorization and routing, in an order the host states in code:
/// the stages one after another (the first refusal ends it), then, once all accepted, the observers. The session
/// store is not part of it: the broker journals sessions itself (MqttBroker's Record* calls), after routing.
/// </summary>
public sealed class PublishPipeline
{
    readonly IPublishStage[] _stages;
    readonly IPublishObserver[] _observers;

    public PublishPipeline(IEnumerable<IPublishStage> stages, IEnumerable<IPublishObserver> observers)
    {
        _stages = [.. stages];
        _observers = [.. observers];
    }

    /// <summary>No stages and no observers: every message is accepted at once.</summary>
    public static PublishPipeline Empty { get; } = new([], []);

    public IReadOnlyList<IPublishStage> Stages => _stages;

    public IReadOnlyList<IPublishObserver> Observers => _observers;

    public ValueTask<AcceptResult> AcceptAsync(MqttMessage message, CancellationToken cancellationToken)
    {
        if (_stages.Length == 0)
        {
            Notify(message);
            return ValueTask.FromResult(AcceptResult.Accepted);
        }
        if (_stages.Length == 1)
        {
            var only = _stages[0].AcceptAsync(message, cancellationToken);
            if (only.IsCompletedSuccessfully)
            {
                if (only.Result == AcceptResult.Accepted)
                {
                    Notify(message);
                }
                return only;
            }
            return AcceptLateAsync(only, message);
        }
        return AcceptInOrderAsync(message, cancellationToken);
    }

    async ValueTask<AcceptResult> AcceptLateAsync(ValueTask<AcceptResult> pending, MqttMessage message)
    {
        var result = await pending.ConfigureAwait(false);
        if (result == AcceptResult.Accepted)
        {
            Notify(message);
        }
        return result;
    }

    async ValueTask<AcceptResult> AcceptInOrderAsync(MqttMessage message, CancellationToken cancellationToken)
    {
        foreach (var stage in _stages)
        {
            var result = await stage.AcceptAsync(message, cancellationToken).ConfigureAwait(false);
            if (result != AcceptResult.Accepted)
            {
                return result;
            }
        }
        Notify(message);
        return AcceptResult.Accepted;
    }

    void Notify(MqttMessage message)
    {
        foreach (var observer in _observers)
        {
            observer.OnAccepted(message);
        }
    }
}
