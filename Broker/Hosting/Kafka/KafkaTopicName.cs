namespace IotRealtime.Hosting.Kafka;

/// <summary>What Kafka accepts as a topic name; checked wherever a topic name comes from configuration or a request.</summary>
public static class KafkaTopicName
{
    /// <summary>The rule in words, for error messages.</summary>
    public const string Rule = "1-249 characters of a-z, A-Z, 0-9, '.', '_', '-'";

    /// <summary>1-249 characters of a-z, A-Z, 0-9, '.', '_', '-', not "." or "..".</summary>
    public static bool IsValid(string? topic) =>
        !string.IsNullOrEmpty(topic) && topic.Length <= 249 && topic is not "." and not ".."
        && topic.All(c => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '_' or '-');
}
