using System.Reflection;

namespace Netloom.Tests;

/// <summary>
/// Layers only call downward (docs/ARCHITECTURE.md): checked over every type's fields, method
/// signatures and base types in the library assembly.
/// </summary>
public class ArchitectureTests
{
    // Which Netloom namespaces each layer may depend on, besides its own and Netloom.Time.
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Netloom.Wire"] = [],
        ["Netloom.Rings"] = ["Netloom.Interop"],
        ["Netloom.Switching"] = ["Netloom.Rings", "Netloom.Wire", "Netloom.Interop"],
        ["Netloom.Stack"] = ["Netloom.Wire"],
        ["Netloom.Sockets"] = ["Netloom.Stack", "Netloom.Wire", "Netloom.Rings"],
        ["Netloom.Offload"] = ["Netloom.Interop"],
        ["Netloom.Interop"] = [],
        ["Netloom.Time"] = [],
        ["Netloom.Emulation"] = ["Netloom.Stack", "Netloom.Wire", "Netloom.Switching", "Netloom.Sockets", "Netloom.Rings", "Netloom.Interop"],
    };

    private static string Layer(string? ns)
    {
        if (ns is null || !ns.StartsWith("Netloom")) return "";
        var parts = ns.Split('.');
        return parts.Length >= 2 ? $"{parts[0]}.{parts[1]}" : ns;
    }

    private static IEnumerable<Type> Referenced(Type t)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        if (t.BaseType is { } b) yield return b;
        foreach (var i in t.GetInterfaces()) yield return i;
        foreach (var f in t.GetFields(all)) yield return f.FieldType;
        foreach (var p in t.GetProperties(all)) yield return p.PropertyType;
        foreach (var m in t.GetMethods(all).Cast<MethodBase>().Concat(t.GetConstructors(all)))
        {
            if (m is MethodInfo mi) yield return mi.ReturnType;
            foreach (var p in m.GetParameters()) yield return p.ParameterType;
        }
    }

    private static IEnumerable<Type> Unwrap(Type t)
    {
        while (t.HasElementType) t = t.GetElementType()!;
        yield return t;
        if (t.IsGenericType) foreach (var a in t.GetGenericArguments().SelectMany(Unwrap)) yield return a;
    }

    [Fact]
    public void Layers_only_depend_downward()
    {
        var violations = new List<string>();
        foreach (var t in typeof(Netloom.Wire.Checksum).Assembly.GetTypes())
        {
            string layer = Layer(t.Namespace);
            if (!Allowed.TryGetValue(layer, out var ok)) continue;
            foreach (var r in Referenced(t).SelectMany(Unwrap))
            {
                string other = Layer(r.Namespace);
                if (other == "" || other == layer || other == "Netloom.Time" || ok.Contains(other)) continue;
                violations.Add($"{t.FullName} ({layer}) uses {r.FullName} ({other})");
            }
        }
        Assert.Empty(violations.Distinct());
    }

    [Fact]
    public void Every_library_namespace_has_a_layer_rule()
    {
        var unknown = typeof(Netloom.Wire.Checksum).Assembly.GetTypes()
            .Select(t => Layer(t.Namespace)).Where(l => l.StartsWith("Netloom.") && !Allowed.ContainsKey(l)).Distinct().ToList();
        Assert.Empty(unknown);
    }

    // The folders of src/Netloom that may hold unsafe code (docs/ARCHITECTURE.md): rings and
    // their memory, the io_uring engine, the system-call layer, and the run engine to come.
    private static readonly string[] UnsafeFolders = ["Rings", "Offload", "Interop", "Run"];

    [Fact]
    public void Unsafe_code_is_only_in_rings_offload_and_interop()
    {
        string? root = null;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null && root is null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Netloom.slnx"))) root = d.FullName;
        Assert.NotNull(root);
        string lib = Path.Combine(root, "src", "Netloom");
        var unsafeWord = new System.Text.RegularExpressions.Regex(@"\bunsafe\b");
        var found = new List<string>();
        int scanned = 0;
        foreach (var file in Directory.EnumerateFiles(lib, "*.cs", SearchOption.AllDirectories))
        {
            string rel = Path.GetRelativePath(lib, file);
            if (rel.StartsWith("bin" + Path.DirectorySeparatorChar) || rel.StartsWith("obj" + Path.DirectorySeparatorChar)) continue;
            string folder = rel.Contains(Path.DirectorySeparatorChar) ? rel[..rel.IndexOf(Path.DirectorySeparatorChar)] : "";
            if (UnsafeFolders.Contains(folder)) continue;
            scanned++;
            int n = 0;
            foreach (string line in File.ReadLines(file))
            {
                n++;
                int comment = line.IndexOf("//", StringComparison.Ordinal); // comments may say the word
                if (unsafeWord.IsMatch(comment < 0 ? line : line[..comment])) found.Add($"{rel}:{n}: {line.Trim()}");
            }
        }
        Assert.True(scanned > 10, $"only {scanned} source files found under {lib}");
        Assert.Empty(found);
    }
}
