/// The best one-to-one matching of rows to columns (the Hungarian method, O(n² m)).
public enum Matching {
    /// For a cost matrix with rows <= columns, the column of each row such that no two rows share
    /// a column and the total cost is the least.
    public static func minimumCost(_ cost: [[Double]]) -> [Int] {
        let n = cost.count
        guard n > 0 else { return [] }
        let m = cost[0].count
        precondition(n <= m && cost.allSatisfy { $0.count == m }, "Matching: needs at most as many rows as columns")
        // Potentials u (rows) and v (columns); owner[j] is the row (1-based) holding column j; column 0 is a sentinel.
        var u = [Double](repeating: 0, count: n + 1), v = [Double](repeating: 0, count: m + 1)
        var owner = [Int](repeating: 0, count: m + 1), previous = [Int](repeating: 0, count: m + 1)
        for row in 1...n {
            owner[0] = row
            var column = 0
            var slack = [Double](repeating: .infinity, count: m + 1)
            var visited = [Bool](repeating: false, count: m + 1)
            repeat {
                visited[column] = true
                let i = owner[column]
                var delta = Double.infinity, nextColumn = 0
                for j in 1...m where !visited[j] {
                    let reduced = cost[i - 1][j - 1] - u[i] - v[j]
                    if reduced < slack[j] { slack[j] = reduced; previous[j] = column }
                    if slack[j] < delta { delta = slack[j]; nextColumn = j }
                }
                for j in 0...m {
                    if visited[j] { u[owner[j]] += delta; v[j] -= delta } else { slack[j] -= delta }
                }
                column = nextColumn
            } while owner[column] != 0
            // Flip the augmenting path back to the sentinel.
            repeat {
                let back = previous[column]
                owner[column] = owner[back]
                column = back
            } while column != 0
        }
        var result = [Int](repeating: -1, count: n)
        for j in 1...m where owner[j] != 0 { result[owner[j] - 1] = j - 1 }
        return result
    }

    /// For any shape: pairs (row, column) of the matching that maximises the summed score.
    public static func maximumScore(_ score: [[Double]]) -> [(row: Int, column: Int)] {
        let rows = score.count, columns = score.first?.count ?? 0
        guard rows > 0, columns > 0 else { return [] }
        if rows <= columns {
            return minimumCost(score.map { $0.map { -$0 } }).enumerated().map { ($0.offset, $0.element) }
        }
        let transposed = (0..<columns).map { c in (0..<rows).map { -score[$0][c] } }
        return minimumCost(transposed).enumerated().map { ($0.element, $0.offset) }.sorted { $0.row < $1.row }
    }
}
