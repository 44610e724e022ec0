using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace IotRealtime.Broker.Engine;

/// <summary>What the transport knows about a connection; the engine never sees Kestrel itself.</summary>
public sealed record ConnectionInfo(
    string Transport,
    EndPoint? RemoteEndPoint,
    EndPoint? LocalEndPoint,
    bool IsSecure,
    X509Certificate2? ClientCertificate);
