/// A parsed ZPL text (ZeroMQ RFC 4, the format of CURVE certificate files): a tree of named
/// sections where each level is indented by four spaces and a line is `name` or
/// `name = value`. Values are kept by their slash-joined path, e.g. `curve/public-key`.
struct ZPLDocument: Equatable {
    /// A value and the 1-based line it was read from.
    struct Entry: Equatable {
        var value: String
        var line: Int
    }

    /// Every `name = value` line, by path.
    private(set) var entries: [String: Entry] = [:]
    /// Every section and value path, in the order read.
    private(set) var paths: [String] = []

    subscript(path: String) -> Entry? { entries[path] }

    /// Why a line could not be read.
    struct LineError: Error, Equatable {
        var line: Int
        var reason: String
    }

    /// Parses ZPL text; the first bad line throws with its number.
    static func parse(_ text: String) throws(LineError) -> ZPLDocument {
        var document = ZPLDocument()
        var stack: [String] = []   // the names of the open sections, one a level
        // "\r\n" is one Character in Swift: split on it as well as on "\n".
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (index, line) in lines.enumerated() {
            let number = index + 1
            let body = line.drop { $0 == " " }
            if body.isEmpty || body.first == "#" { continue }
            let indent = line.count - body.count
            guard !body.hasPrefix("\t") else { throw LineError(line: number, reason: "tab in the indentation (ZPL indents with four spaces)") }
            guard indent % 4 == 0 else { throw LineError(line: number, reason: "indentation of \(indent) spaces is not a multiple of four") }
            let level = indent / 4
            guard level <= stack.count else {
                throw LineError(line: number, reason: "indented \(level) levels below a section \(stack.count) deep")
            }
            stack.removeLast(stack.count - level)
            let (name, value) = try splitNameAndValue(body, line: number)
            let path = (stack + [name]).joined(separator: "/")
            if let value {
                guard document.entries[path] == nil else { throw LineError(line: number, reason: "\(path) is given twice") }
                document.entries[path] = Entry(value: value, line: number)
            }
            document.paths.append(path)
            stack.append(name)
        }
        return document
    }

    /// Splits `name`, `name = value`, `name = "value"` (or single quotes), with an optional
    /// `# comment` after an unquoted value or a closing quote.
    private static func splitNameAndValue(_ body: Substring, line: Int) throws(LineError) -> (String, String?) {
        let nameEnd = body.firstIndex { !isNameCharacter($0) } ?? body.endIndex
        let name = String(body[..<nameEnd])
        guard !name.isEmpty else { throw LineError(line: line, reason: "expected a name, found \"\(body.prefix(20))\"") }
        var rest = body[nameEnd...].drop { $0 == " " }
        if rest.isEmpty || rest.first == "#" { return (name, nil) }
        guard rest.first == "=" else { throw LineError(line: line, reason: "expected \"=\" after \(name)") }
        rest = rest.dropFirst().drop { $0 == " " }
        guard let first = rest.first else { return (name, "") }
        if first == "\"" || first == "'" {
            let content = rest.dropFirst()
            guard let close = content.firstIndex(of: first) else {
                throw LineError(line: line, reason: "the quoted value of \(name) is not closed")
            }
            let after = content[content.index(after: close)...].drop { $0 == " " }
            guard after.isEmpty || after.first == "#" else {
                throw LineError(line: line, reason: "unexpected text after the quoted value of \(name)")
            }
            return (name, String(content[..<close]))
        }
        let valueEnd = rest.firstIndex { $0 == " " || $0 == "#" } ?? rest.endIndex
        let after = rest[valueEnd...].drop { $0 == " " }
        guard after.isEmpty || after.first == "#" else {
            throw LineError(line: line, reason: "unexpected text after the value of \(name) (quote values with spaces)")
        }
        return (name, String(rest[..<valueEnd]))
    }

    /// ZPL names: letters, digits and `$-_@.&+/`.
    private static func isNameCharacter(_ character: Character) -> Bool {
        guard character.isASCII else { return false }
        return character.isLetter || character.isNumber || "$-_@.&+/".contains(character)
    }
}
