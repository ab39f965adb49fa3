namespace Netloom.Interop.Tests.Support;

/// <summary>Compiles a C program that prints "name=value" lines and compares the values with ours.</summary>
internal static class CLayout
{
    public static void AssertSame(string program, Dictionary<string, long> ours)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("layout.c"), program);
        var (cc, _, err) = Sh.Run("gcc", "-o", dir.File("layout"), dir.File("layout.c"));
        Assert.True(cc == 0, err);
        var c = Sh.Ok(dir.File("layout")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=')).ToDictionary(p => p[0], p => long.Parse(p[1]));
        var mismatches = ours.Where(kv => !c.TryGetValue(kv.Key, out long v) || v != kv.Value)
            .Select(kv => $"{kv.Key}: netloom {kv.Value}, C {(c.TryGetValue(kv.Key, out long v) ? v : "missing")}").ToList();
        Assert.Empty(mismatches);
        Assert.Equal(c.Count, ours.Count); // every value the C program prints is checked
    }
}
