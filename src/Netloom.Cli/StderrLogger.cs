using Microsoft.Extensions.Logging;

namespace Netloom.Cli;

/// <summary>
/// The CLI's own logger: the library logs through ILogger and never prints, so the verbs hand it
/// this, which writes warnings and errors to stderr as "netloom: ..." (what a stack's failing
/// owner thread used to print by itself).
/// </summary>
internal sealed class StderrLoggerFactory(LogLevel minimum = LogLevel.Warning) : ILoggerFactory
{
    public static readonly StderrLoggerFactory Instance = new();

    public ILogger CreateLogger(string categoryName) => new Logger(minimum);
    public void AddProvider(ILoggerProvider provider) { }
    public void Dispose() { }

    private sealed class Logger(LogLevel minimum) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            string text = formatter(state, exception);
            Console.Error.WriteLine(exception is null ? $"netloom: {text}" : $"netloom: {text}: {exception}");
        }
    }
}
