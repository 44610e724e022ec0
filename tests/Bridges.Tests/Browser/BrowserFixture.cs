using Microsoft.Playwright;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Browser;

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "Browser";
}

/// <summary>
/// One headless Debian Chromium (/usr/bin/chromium) for the whole test run, driven by Playwright's bundled Node
/// driver; Playwright never downloads a browser. Each test gets its own context (cookies, storage) and page.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    static readonly string[] ChromiumArgs =
    [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ];

    IPlaywright? _playwright;
    IBrowser? _browser;

    /// <summary>Where screenshots go: TestResults/screenshots under the test output directory.</summary>
    public static string ScreenshotDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots");

    public IBrowser Browser => _browser ?? throw new InvalidOperationException("The browser is not started.");

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException($"Chromium is not installed at {ChromiumPath} (Debian: apt-get install chromium; scripts/test.sh installs it).");
        }
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ChromiumArgs,
            Timeout = (float)Timeouts.Default.TotalMilliseconds,
        });
    }

    /// <summary>
    /// A fresh context and page; console errors and warnings and uncaught exceptions go to <paramref name="log"/>, and
    /// errors also to <paramref name="onConsoleError"/> and <paramref name="onPageError"/>. Tests get pages through
    /// <see cref="BrowserTest"/>, which fails them on those errors.
    /// </summary>
    internal async Task<IPage> NewPageAsync(ITestOutputHelper log, string? baseUrl, Action<IConsoleMessage> onConsoleError, Action<string> onPageError)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = baseUrl,
            ViewportSize = new ViewportSize { Width = 1280, Height = 800 },
        });
        context.SetDefaultTimeout((float)Timeouts.Default.TotalMilliseconds);
        var page = await context.NewPageAsync();
        page.Console += (_, message) =>
        {
            if (message.Type is "error" or "warning") Log(log, $"console.{message.Type}: {message.Text}");
            if (message.Type == "error") onConsoleError(message);
        };
        page.PageError += (_, error) =>
        {
            Log(log, $"page error: {error}");
            onPageError(error);
        };
        return page;
    }

    /// <summary>Saves a full-page screenshot as TestResults/screenshots/<paramref name="name"/>.png and returns its path.</summary>
    public static async Task<string> ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ScreenshotDirectory);
        var path = Path.Combine(ScreenshotDirectory, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }

    static void Log(ITestOutputHelper log, string line)
    {
        // The page may log after the test finished; xunit refuses output then.
        try
        {
            log.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        _playwright?.Dispose();
    }
}
