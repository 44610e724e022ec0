namespace IotRealtime.Broker.Host.Tls;

/// <summary>Whether TLS clients present a certificate.</summary>
public enum TlsClientCertificateMode
{
    None,
    /// <summary>Asked for; a client without one still connects, one with an invalid one does not.</summary>
    Allow,
    Require,
}

/// <summary>TLS for the MQTTS and HTTPS (WSS) listeners, bound from the "Tls" configuration section. TLS is on when <see cref="CertificatePath"/> is set.</summary>
public sealed class TlsOptions
{
    public const string Section = "Tls";

    /// <summary>Server certificate: PEM (leaf first, then any intermediates) or PKCS#12 (.pfx/.p12).</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key; leave unset when the key is inside the certificate file.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Password of the PFX file or of an encrypted PEM key.</summary>
    public string? CertificatePassword { get; set; }

    public TlsClientCertificateMode ClientCertificateMode { get; set; } = TlsClientCertificateMode.None;

    /// <summary>PEM bundle of CAs that client certificates must chain to; unset = the system trust store.</summary>
    public string? ClientCaPath { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(CertificatePath);
}
