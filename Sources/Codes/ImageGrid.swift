import Images

/// Tiles of equal size laid out in rows on white, with a gap around each (strips, traversal grids).
public enum ImageGrid {
    public static let gap = 2

    /// `tiles` (CHW floats in [-1, 1], `side` x `side`), `columns` per row.
    public static func compose(_ tiles: [[Float]], side: Int, columns: Int) -> RGBImage {
        let images = tiles.map { tile in tile.withUnsafeBufferPointer { RGBImage(chwSigned: $0, width: side, height: side) } }
        return compose(images, columns: columns)
    }

    /// RGB tiles of one size, `columns` per row.
    public static func compose(_ tiles: [RGBImage], columns: Int) -> RGBImage {
        precondition(!tiles.isEmpty && columns >= 1)
        let (w, h) = (tiles[0].width, tiles[0].height)
        let rows = (tiles.count + columns - 1) / columns
        let width = columns * w + (columns + 1) * gap, height = rows * h + (rows + 1) * gap
        var pixels = [UInt8](repeating: 255, count: width * height * 3)
        for (i, tile) in tiles.enumerated() {
            precondition(tile.width == w && tile.height == h, "ImageGrid: tiles of different sizes")
            let left = gap + (i % columns) * (w + gap), top = gap + (i / columns) * (h + gap)
            for y in 0..<h {
                let from = y * w * 3, to = ((top + y) * width + left) * 3
                pixels.replaceSubrange(to..<(to + w * 3), with: tile.pixels[from..<(from + w * 3)])
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
