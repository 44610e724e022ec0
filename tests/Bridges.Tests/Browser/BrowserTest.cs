using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IotRealtime.Bridges.Tests.Browser;

/// <summary>
/// The base of every browser test: pages come only from <see cref="NewPageAsync"/>, and an uncaught exception or a
/// console error (<c>console.error</c>, or the browser's own report of a failed request) in any of them fails the test
/// when it ends, unless the test declared it with <see cref="ExpectConsoleError"/> (e.g. the network error of a
/// connection the test breaks on purpose). Servers the pages talk to are handed to <see cref="Own{T}"/>: they stop
/// after the pages closed, so a page never reports its server going away at the end of a test.
/// </summary>
public abstract class BrowserTest(BrowserFixture browser, ITestOutputHelper output) : IAsyncLifetime
{
    readonly ConcurrentQueue<string> _problems = new();
    readonly ConcurrentQueue<Regex> _expected = new();
    readonly ConcurrentQueue<IBrowserContext> _contexts = new();
    readonly ConcurrentStack<IAsyncDisposable> _owned = new();

    protected ITestOutputHelper Output => output;

    /// <summary>A fresh context and page, watched for JavaScript errors until the test ends.</summary>
    protected async Task<IPage> NewPageAsync(string? baseUrl = null)
    {
        var page = await browser.NewPageAsync(output, baseUrl, OnConsoleError, error => _problems.Enqueue($"uncaught exception in the page: {error}"));
        _contexts.Enqueue(page.Context);
        return page;
    }

    /// <summary>Disposes <paramref name="resource"/> when the test ends, after its pages closed (last owned, first disposed).</summary>
    protected T Own<T>(T resource) where T : IAsyncDisposable
    {
        _owned.Push(resource);
        return resource;
    }

    /// <summary>
    /// Declares console errors matching <paramref name="pattern"/> as expected: they are logged and do not fail the test.
    /// The pattern is matched against "&lt;text&gt; at &lt;url:line:column&gt;".
    /// </summary>
    protected void ExpectConsoleError(string pattern) => _expected.Enqueue(new Regex(pattern, RegexOptions.CultureInvariant));

    void OnConsoleError(IConsoleMessage message)
    {
        var described = $"{message.Text} at {message.Location}";
        if (_expected.Any(e => e.IsMatch(described))) return;
        _problems.Enqueue($"console error in the page: {described}");
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // Closing delivers every event the pages raised before it, so nothing logged at the very end is missed.
        while (_contexts.TryDequeue(out var context))
        {
            try
            {
                await context.CloseAsync();
            }
            catch (PlaywrightException)
            {
            }
        }
        var failures = new List<Exception>();
        while (_owned.TryPop(out var resource))
        {
            try
            {
                await resource.DisposeAsync();
            }
            catch (Exception e)
            {
                failures.Add(e);
            }
        }
        if (!_problems.IsEmpty)
        {
            failures.Insert(0, new XunitException($"JavaScript errors in the page:{Environment.NewLine}{string.Join(Environment.NewLine, _problems)}"));
        }
        if (failures.Count == 1) throw failures[0];
        if (failures.Count > 1) throw new AggregateException(failures);
    }
}
