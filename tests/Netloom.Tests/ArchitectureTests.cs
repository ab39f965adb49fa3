using System.Reflection;
using System.Reflection.Emit;

namespace Netloom.Tests;

/// <summary>
/// Layers only call downward (docs/ARCHITECTURE.md): checked over every type's signatures (base
/// types, interfaces, fields, properties, parameters, return types) and over what its method
/// bodies reference (the IL's type, field and method tokens, locals and catch clauses), so a
/// dependency hidden in a body, a lambda or an async state machine is caught too.
/// </summary>
public class ArchitectureTests
{
    // Which Netloom units each unit may depend on, besides its own, Netloom.Time and
    // Netloom.Diagnostics (the meter and logging, which every layer may publish to). A unit is the
    // longest key here that a namespace starts with: Netloom.Stack.Devices belongs to Netloom.Stack,
    // Netloom.Emulation.Async to Netloom.Emulation (the emulator's core).
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Netloom.Wire"] = [],
        ["Netloom.Rings"] = ["Netloom.Interop"],
        ["Netloom.Switching"] = ["Netloom.Rings", "Netloom.Wire", "Netloom.Interop"],
        ["Netloom.Netem"] = [],
        ["Netloom.Stack"] = ["Netloom.Wire", "Netloom.Netem"],
        ["Netloom.Sockets"] = ["Netloom.Stack", "Netloom.Wire", "Netloom.Rings"],
        ["Netloom.Offload"] = ["Netloom.Interop"],
        ["Netloom.Interop"] = [],
        ["Netloom.Time"] = [],
        ["Netloom.Diagnostics"] = [],
        // The emulator's core (Network, nodes, links, the App base) sees every layer below it but
        // neither its apps nor its topology files; the apps build on the core; the topology code,
        // which instantiates apps from YAML, sees both.
        ["Netloom.Emulation"] = Below,
        ["Netloom.Emulation.Apps"] = [.. Below, "Netloom.Emulation"],
        ["Netloom.Emulation.Topology"] = [.. Below, "Netloom.Emulation", "Netloom.Emulation.Apps"],
    };

    private static string[] Below => ["Netloom.Netem", "Netloom.Stack", "Netloom.Wire", "Netloom.Switching", "Netloom.Sockets", "Netloom.Rings", "Netloom.Interop"];

    private const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static string Unit(string? ns)
    {
        if (ns is null || !(ns == "Netloom" || ns.StartsWith("Netloom.", StringComparison.Ordinal))) return "";
        string best = ns;
        int bestLength = -1;
        foreach (var key in Allowed.Keys)
            if ((ns == key || ns.StartsWith(key + ".", StringComparison.Ordinal)) && key.Length > bestLength) { best = key; bestLength = key.Length; }
        return best;
    }

    private static IEnumerable<Type> Signatures(Type t)
    {
        if (t.BaseType is { } b) yield return b;
        foreach (var i in t.GetInterfaces()) yield return i;
        foreach (var f in t.GetFields(All)) yield return f.FieldType;
        foreach (var p in t.GetProperties(All)) yield return p.PropertyType;
        foreach (var m in Methods(t))
        {
            if (m is MethodInfo mi) yield return mi.ReturnType;
            foreach (var p in m.GetParameters()) yield return p.ParameterType;
        }
    }

    private static IEnumerable<MethodBase> Methods(Type t) => t.GetMethods(All).Cast<MethodBase>().Concat(t.GetConstructors(All));

    /// <summary>One-byte and two-byte (0xFE-prefixed) opcodes, by value, for walking IL.</summary>
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>Every member a method body names (calls, field accesses, tokens for typeof/box/castclass/newarr...), its locals' types and its catch types.</summary>
    internal static IEnumerable<MemberInfo> BodyReferences(MethodBase m)
    {
        var body = m.GetMethodBody();
        if (body is null) yield break;
        foreach (var local in body.LocalVariables) yield return local.LocalType;
        foreach (var clause in body.ExceptionHandlingClauses)
            if (clause.Flags == ExceptionHandlingClauseOptions.Clause && clause.CatchType is { } c) yield return c;
        var il = body.GetILAsByteArray()!;
        var typeArgs = m.DeclaringType is { IsGenericType: true } dt ? dt.GetGenericArguments() : null;
        var methodArgs = m.IsGenericMethod ? m.GetGenericArguments() : null;
        int i = 0;
        while (i < il.Length)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            switch (op.OperandType)
            {
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: i += 1; break;
                case OperandType.InlineVar: i += 2; break;
                case OperandType.InlineI8 or OperandType.InlineR: i += 8; break;
                case OperandType.InlineSwitch: i += 4 + 4 * BitConverter.ToInt32(il, i); break;
                case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineTok or OperandType.InlineType:
                    yield return m.Module.ResolveMember(BitConverter.ToInt32(il, i), typeArgs, methodArgs)!;
                    i += 4;
                    break;
                default: i += 4; break; // InlineI, InlineBrTarget, InlineSig, InlineString, ShortInlineR
            }
        }
    }

    /// <summary>The types a member reference brings in: a type itself, or a field's or method's declaring type and signature.</summary>
    private static IEnumerable<Type> TypesOf(MemberInfo member)
    {
        switch (member)
        {
            case Type t: yield return t; break;
            case FieldInfo f:
                yield return f.DeclaringType!;
                yield return f.FieldType;
                break;
            case MethodBase mb:
                yield return mb.DeclaringType!;
                if (mb is MethodInfo mi)
                {
                    yield return mi.ReturnType;
                    if (mi.IsGenericMethod) foreach (var a in mi.GetGenericArguments()) yield return a;
                }
                foreach (var p in mb.GetParameters()) yield return p.ParameterType;
                break;
        }
    }

    private static IEnumerable<Type> Unwrap(Type t)
    {
        while (t.HasElementType) t = t.GetElementType()!;
        yield return t;
        if (t.IsGenericType) foreach (var a in t.GetGenericArguments().SelectMany(Unwrap)) yield return a;
    }

    /// <summary>Every reference from <paramref name="types"/> that breaks a layer rule, as "who (unit) uses what (unit) in where".</summary>
    internal static List<string> LayerViolations(IEnumerable<Type> types, bool bodies = true)
    {
        var violations = new List<string>();
        foreach (var t in types)
        {
            string unit = Unit(t.Namespace);
            if (!Allowed.TryGetValue(unit, out var ok)) continue;
            void Check(Type r, string where)
            {
                string other = Unit(r.Namespace);
                if (other == "" || other == unit || other == "Netloom.Time" || other == "Netloom.Diagnostics" || ok.Contains(other)) return;
                violations.Add($"{t.FullName} ({unit}) uses {r.FullName} ({other}) in {where}");
            }
            foreach (var r in Signatures(t).SelectMany(Unwrap)) Check(r, "a signature");
            if (!bodies) continue;
            foreach (var m in Methods(t))
                foreach (var member in BodyReferences(m))
                    foreach (var r in TypesOf(member).SelectMany(Unwrap))
                        Check(r, $"the body of {m.Name}");
        }
        return violations.Distinct().ToList();
    }

    private static IEnumerable<Type> WithNested(Type t) => [t, .. t.GetNestedTypes(All).SelectMany(WithNested)];

    private static Type[] LibraryTypes => typeof(Netloom.Wire.Checksum).Assembly.GetTypes();

    [Fact]
    public void Layers_only_depend_downward()
    {
        Assert.Empty(LayerViolations(LibraryTypes));
    }

    [Fact]
    public void Every_library_namespace_has_a_layer_rule()
    {
        var unknown = LibraryTypes.Select(t => Unit(t.Namespace)).Where(l => l.StartsWith("Netloom.") && !Allowed.ContainsKey(l)).Distinct().ToList();
        Assert.Empty(unknown);
    }

    [Fact]
    public void The_layer_check_sees_a_dependency_that_only_a_method_body_has()
    {
        // The probes live in this test assembly under library namespaces. Their signatures are clean.
        Type[] probes = [.. WithNested(typeof(Netloom.Wire.LayerProbe)), typeof(Netloom.Emulation.LayerProbe)];
        Assert.Empty(LayerViolations(probes, bodies: false));
        var found = LayerViolations(probes);
        Assert.Contains(found, v => v.Contains("Netloom.Wire.LayerProbe") && v.Contains("Netloom.Stack.StackOptions") && v.Contains("Reach"));
        // A lambda's body is a method of a compiler-made nested type: it is checked as well.
        Assert.Contains(found, v => v.Contains("Netloom.Wire.LayerProbe+") && v.Contains("Netloom.Sockets.SocketStack"));
        Assert.Contains(found, v => v.Contains("Netloom.Emulation.LayerProbe") && v.Contains("Netloom.Emulation.Apps.PingApp"));
    }

    // ---- Clocks ----

    /// <summary>
    /// The only code that reads a clock itself. Everything else is handed an <c>Instant</c>, or reads
    /// time through <see cref="Netloom.Time.MonotonicClock"/>.
    /// </summary>
    private static readonly Dictionary<string, string> ClockReaders = new()
    {
        ["Netloom.Time.MonotonicClock"] = "the clock every host, the switch's Run, KvHandler and the emulator's real-time mode read",
        ["Netloom.Rings.PortBase"] = "WaitRx/WaitTx timeouts: a deadline for a blocking wait, never a time a packet sees",
        ["Netloom.Offload.UringServer"] = "the loop's busy-poll budget (BusyPollMicroseconds): how long to spin before sleeping in the kernel",
    };

    /// <summary>Layers that are handed their time and may not even hold a clock.</summary>
    private static readonly string[] Clockless = ["Netloom.Wire", "Netloom.Stack", "Netloom.Netem"];

    private static bool ReadsClock(MemberInfo member) => member switch
    {
        MethodBase { DeclaringType: { } d } m when d == typeof(System.Diagnostics.Stopwatch) => m.Name is not "get_Frequency" and not "get_IsHighResolution",
        MethodBase { DeclaringType: { } d } m when d == typeof(DateTime) || d == typeof(DateTimeOffset) => m.Name is "get_Now" or "get_UtcNow" or "get_Today",
        MethodBase { DeclaringType: { } d } m when d == typeof(Environment) => m.Name is "get_TickCount" or "get_TickCount64",
        MethodBase { DeclaringType: { } d } m when d == typeof(TimeProvider) => m.Name is "get_System" or "GetTimestamp" or "GetUtcNow" or "GetLocalNow",
        _ => false,
    };

    private static string Outermost(Type t)
    {
        while (t.DeclaringType is { } d) t = d;
        return t.FullName!;
    }

    internal static List<string> ClockViolations(IEnumerable<Type> types)
    {
        var violations = new List<string>();
        foreach (var t in types)
        {
            string unit = Unit(t.Namespace);
            if (unit == "") continue;
            foreach (var m in Methods(t))
                foreach (var member in BodyReferences(m))
                {
                    if (ReadsClock(member) && !ClockReaders.ContainsKey(Outermost(t)))
                        violations.Add($"{t.FullName}.{m.Name} reads a clock ({member.DeclaringType!.Name}.{member.Name})");
                    if (Clockless.Contains(unit) && TypesOf(member).SelectMany(Unwrap).Contains(typeof(Netloom.Time.MonotonicClock)))
                        violations.Add($"{t.FullName}.{m.Name} ({unit}) holds a MonotonicClock");
                }
        }
        return violations.Distinct().ToList();
    }

    [Fact]
    public void Only_the_clock_owners_read_a_clock()
    {
        Assert.Empty(ClockViolations(LibraryTypes));
        foreach (var reader in ClockReaders.Keys) Assert.NotNull(typeof(Netloom.Wire.Checksum).Assembly.GetType(reader));
    }

    [Fact]
    public void The_clock_check_sees_a_clock_read_in_a_body()
    {
        var found = ClockViolations([typeof(Netloom.Stack.ClockProbe)]);
        Assert.Contains(found, v => v.Contains("ClockProbe.Now") && v.Contains("DateTime.get_UtcNow"));
        Assert.Contains(found, v => v.Contains("ClockProbe.Monotonic") && v.Contains("holds a MonotonicClock"));
    }
}
