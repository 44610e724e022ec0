using IotRealtime.Bridges.Tests.Infrastructure;
using IotRealtime.Broker.Host.Auth;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Browser;

/// <summary>With broker authentication on, the pages ask for credentials, get a token from POST /api/token and use it.</summary>
[Collection(BrowserCollection.Name)]
public sealed class SignInTests(BrowserFixture browser, ITestOutputHelper output) : BrowserTest(browser, output), IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("iotrealtime-signin-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task The_fleet_view_signs_in_with_broker_credentials_and_streams_with_the_token()
    {
        // the page learns it must sign in from /api/fleet's 401, and the wrong password gets a 401 from /api/token
        ExpectConsoleError(@"status of 401 \(Unauthorized\) at http://[^ ]*/api/(fleet|token)");
        var passwords = Path.Combine(_dir, "passwords");
        PasswordFile.SetPassword(passwords, "operator", PasswordHash.Create("s3cret"u8, iterations: 1000));
        PasswordFile.SetPassword(passwords, "sensor", PasswordHash.Create("sensor-pw"u8, iterations: 1000));
        var host = Own(await TestBridges.StartAsync(new Dictionary<string, string?> { ["Auth:PasswordFile"] = passwords }));
        var page = await NewPageAsync();
        await page.GotoAsync(host.BaseUri.ToString());

        var dialog = page.GetByRole(AriaRole.Dialog, new() { Name = "Sign in" });
        await Assertions.Expect(dialog).ToBeVisibleAsync();
        await dialog.GetByLabel("User name").FillAsync("operator");
        await dialog.GetByLabel("Password").FillAsync("wrong");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(dialog.GetByRole(AriaRole.Alert)).ToHaveTextAsync("Wrong user name or password.");
        await BrowserFixture.ScreenshotAsync(page, "sign-in");

        await dialog.GetByLabel("Password").FillAsync("s3cret");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(dialog).ToHaveCountAsync(0);
        await DashboardPage.WaitForSubscriptionAsync(page);
        Assert.Equal("ws", await DashboardPage.TransportAsync(page));

        await host.ConnectMqttAsync("secure-1", "sensor", "sensor-pw");
        await Assertions.Expect(page.Locator("tr[data-client-id='secure-1']")).ToBeVisibleAsync();
        Assert.True(await page.EvaluateAsync<int>("() => window.iotDashboard.presenceEvents") >= 1, "the token-authenticated $presence stream delivered nothing");
    }
}
