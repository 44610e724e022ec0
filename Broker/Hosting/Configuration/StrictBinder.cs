using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Hosting.Configuration;

/// <summary>
/// Binds configuration into option objects key by key, so one bad value does not hide the others, and reports every key
/// that matches no property: a misspelt "Listeners:MqttPrt" must never silently fall back to its default. Every problem
/// names its full key. Used by the broker, bridges and telemetry hosts alike.
/// </summary>
/// <remarks>
/// What binds: public settable properties, matched case-insensitively. Nested option objects bind section by section;
/// <see cref="List{T}"/> properties take indexed keys (<c>X:0</c>, <c>X:1</c>; items may be option objects, bound the
/// same way) or, for lists of strings, one comma-separated value (<c>X=a,b</c>); either replaces the default list. Scalars
/// (strings, numbers including <c>uint</c>, bools, enums and their nullable forms) convert as
/// <see cref="ConfigurationBinder"/> converts them.
/// </remarks>
public static class StrictBinder
{
    /// <summary>A new <typeparamref name="T"/> bound from <paramref name="section"/> of <paramref name="configuration"/>.</summary>
    public static T Bind<T>(IConfiguration configuration, string section, List<string> errors) where T : class, new()
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new T();
        Bind(options, configuration.GetSection(section), section, errors);
        return options;
    }

    /// <summary>Binds every key of <paramref name="section"/> into <paramref name="target"/>; <paramref name="path"/> prefixes the keys in errors.</summary>
    public static void Bind(object target, IConfigurationSection section, string path, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(errors);
        var properties = target.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.SetMethod!.IsPublic && p.GetIndexParameters().Length == 0)
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var child in section.GetChildren())
        {
            var key = $"{path}:{child.Key}";
            if (!properties.TryGetValue(child.Key, out var property))
            {
                errors.Add($"{key} is not a known setting; {path} has {string.Join(", ", properties.Keys.Order(StringComparer.Ordinal))}.");
                continue;
            }
            var type = property.PropertyType;
            if (ListItemType(type) is { } itemType)
            {
                if (BindList(child, key, itemType, errors) is { } list) property.SetValue(target, list);
            }
            else if (IsOptionObject(type))
            {
                if (!IsSection(child, key, errors)) continue;
                var nested = property.GetValue(target);
                if (nested is null)
                {
                    nested = Activator.CreateInstance(type)!;
                    property.SetValue(target, nested);
                }
                Bind(nested, child, key, errors);
            }
            else if (TryConvert(child, key, type, errors, out var value) && value is not null)
            {
                property.SetValue(target, value);
            }
        }
    }

    /// <summary>A new list from indexed children or one comma-separated value; null (the default stays) when the value is not a list.</summary>
    static System.Collections.IList? BindList(IConfigurationSection section, string key, Type itemType, List<string> errors)
    {
        var list = (System.Collections.IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(itemType))!;
        var children = section.GetChildren().ToList();
        if (children.Count == 0)
        {
            if (section.Value is null) return list;
            if (itemType != typeof(string))
            {
                errors.Add($"{key}: '{section.Value}' is not valid; expected a list in indexed keys ({key}:0, {key}:1, ...).");
                return null;
            }
            foreach (var item in section.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) list.Add(item);
            return list;
        }
        foreach (var child in children)
        {
            var itemKey = $"{key}:{child.Key}";
            if (IsOptionObject(itemType))
            {
                if (!IsSection(child, itemKey, errors)) continue;
                var item = Activator.CreateInstance(itemType)!;
                Bind(item, child, itemKey, errors);
                list.Add(item);
            }
            else if (itemType == typeof(string) && !child.GetChildren().Any())
            {
                // An empty item stays in the list, so validation can name it rather than it vanishing.
                list.Add(child.Value ?? string.Empty);
            }
            else if (TryConvert(child, itemKey, itemType, errors, out var value) && value is not null)
            {
                list.Add(value);
            }
        }
        return list;
    }

    static bool TryConvert(IConfigurationSection section, string key, Type type, List<string> errors, out object? value)
    {
        value = null;
        if (section.Value is null)
        {
            if (!section.GetChildren().Any()) return true;
            errors.Add($"{key} takes one value, not a section (found {string.Join(", ", section.GetChildren().Select(c => $"{key}:{c.Key}"))}).");
            return false;
        }
        try
        {
            value = section.Get(type);
            return true;
        }
        catch (InvalidOperationException)
        {
            errors.Add($"{key}: '{section.Value}' is not valid; expected {Accepted(type)}.");
            return false;
        }
    }

    /// <summary>A section given a value of its own ("Bridges:Sse=fast") is an error; an empty value is the empty section.</summary>
    static bool IsSection(IConfigurationSection section, string key, List<string> errors)
    {
        if (string.IsNullOrEmpty(section.Value)) return true;
        errors.Add($"{key}: '{section.Value}' is not valid; {key} is a section, set its keys ({key}:...).");
        return false;
    }

    static Type? ListItemType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>) ? type.GetGenericArguments()[0] : null;

    /// <summary>A class of settings bound key by key, as opposed to a value converted from one string.</summary>
    static bool IsOptionObject(Type type) =>
        type.IsClass && type != typeof(string) && !type.IsArray && !typeof(System.Collections.IEnumerable).IsAssignableFrom(type)
        && type.GetConstructor(Type.EmptyTypes) is not null;

    static string Accepted(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (t.IsEnum) return $"one of {string.Join(", ", Enum.GetNames(t))}";
        if (t == typeof(bool)) return "true or false";
        if (t == typeof(int) || t == typeof(long) || t == typeof(uint) || t == typeof(ulong) || t == typeof(short) || t == typeof(ushort) || t == typeof(byte)) return "a whole number";
        if (t == typeof(double) || t == typeof(float) || t == typeof(decimal)) return "a number";
        return $"a {t.Name}";
    }
}
