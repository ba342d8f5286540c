import Foundation

/// File names for outputs: each source's name without its extension, made unique with -2, -3, ...
public enum OutputNames {
    public static func stems(_ paths: [String]) -> [String] {
        var used = Set<String>()
        return paths.map { path in
            let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            var name = stem, n = 1
            while used.contains(name) { n += 1; name = "\(stem)-\(n)" }
            used.insert(name)
            return name
        }
    }
}
