#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Images
import TensorFiles

/// The built-in sample data set: an ImageNet-layout folder of JPEGs with real structure (shapes,
/// gradients, textures), one kind of structure per class, so that training has something to learn
/// without a download. Generated once, deterministically, and reused.
///
/// Image i belongs to class i mod 8 and is drawn from `KeyedRandom(.sampleData, seed: seed, i)`
/// with integer and correctly rounded float arithmetic only (no sin or exp, whose last bits vary
/// between C libraries), then JPEG-encoded at quality 90 with libjpeg-turbo's accurate DCT. Its
/// shorter side is `size`, its longer side `size` to 5/4 `size`, so random crops have room.
///
/// Layout: `<cache>/sample-v1-n<count>-s<size>-seed<seed>/<class>/<class>_<i, 6 digits>.JPEG`.
public enum SampleData {
    /// Bumped whenever the drawing changes, so an old set is never mistaken for a new one.
    static let version = 1

    public static let classNames = [
        "s0_disks", "s1_stripes", "s2_checks", "s3_boxes", "s4_rings", "s5_clouds", "s6_triangles", "s7_waves",
    ]

    /// The folder of the set for these parameters under `cacheDirectory`, generating it if missing.
    /// Generation writes into a hidden temporary folder that is renamed into place when complete,
    /// so a crash or a concurrent generator never leaves a partial set under the final name.
    public static func ensure(at cacheDirectory: String, count: Int = 2000, size: Int = 64,
                              seed: UInt64 = 0) throws(SampleDataError) -> String {
        precondition(count > 0 && size >= 8, "SampleData: count must be positive and size at least 8")
        let name = "sample-v\(version)-n\(count)-s\(size)-seed\(seed)"
        let target = cacheDirectory + "/" + name
        if isDirectory(target) { return target }

        do {
            try DatasetIndexCache.makeDirectories(cacheDirectory)
        } catch {
            throw .cannotWrite(path: cacheDirectory, reason: error.description)
        }
        let temporary = cacheDirectory + "/.\(name).tmp-\(getpid())"
        removeTree(temporary)
        do {
            try generate(into: temporary, count: count, size: size, seed: seed)
        } catch {
            removeTree(temporary)
            throw error
        }
        if rename(temporary, target) != 0 {
            let reason = String(cString: strerror(errno))
            removeTree(temporary)
            // Another process finished the same set first: theirs is identical.
            if isDirectory(target) { return target }
            throw .cannotWrite(path: target, reason: "rename: \(reason)")
        }
        BinaryFile.syncDirectory(containing: target)
        return target
    }

    /// Images in the held-out set and its seed: drawn by the same generator as the training set
    /// but with another seed, so no image of it is trained on.
    public static let heldOutCount = 256
    public static let heldOutSeed: UInt64 = 1

    /// The built-in sample data's held-out set (validation when no --val-data is given), made
    /// like the training set under `cacheDirectory`.
    public static func ensureHeldOut(at cacheDirectory: String) throws(SampleDataError) -> String {
        try ensure(at: cacheDirectory, count: heldOutCount, size: 64, seed: heldOutSeed)
    }

    /// `ensure` in the default cache folder (`$XDG_CACHE_HOME/scvae`, else `~/.cache/scvae`).
    public static func ensureInDefaultCache(count: Int = 2000, size: Int = 64, seed: UInt64 = 0) throws(SampleDataError) -> String {
        try ensure(at: DatasetIndexCache.defaultDirectory(), count: count, size: size, seed: seed)
    }

    /// Writes the set into `folder` (created), without the atomic rename.
    static func generate(into folder: String, count: Int, size: Int, seed: UInt64) throws(SampleDataError) {
        for className in classNames {
            let path = folder + "/" + className
            do {
                try DatasetIndexCache.makeDirectories(path)
            } catch {
                throw .cannotWrite(path: path, reason: error.description)
            }
        }
        for index in 0..<count {
            let className = classNames[index % classNames.count]
            let jpeg: [UInt8]
            do {
                jpeg = try encodeJPEG(image(index: index, size: size, seed: seed), quality: 90)
            } catch {
                throw .encodingFailed(reason: error.description)
            }
            let digits = String(index)
            let file = folder + "/\(className)/\(className)_" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".JPEG"
            do {
                try BinaryFile.writeAtomically(jpeg, to: file)
            } catch {
                throw .cannotWrite(path: file, reason: error.description)
            }
        }
    }

    /// Image `index` of the set.
    public static func image(index: Int, size: Int, seed: UInt64) -> RGBImage {
        var random = KeyedRandom(.sampleData, seed: seed, index)
        let longer = size + random.below(size / 4 + 1)
        let landscape = random.coin()
        var canvas = Canvas(width: landscape ? longer : size, height: landscape ? size : longer)
        canvas.fillGradient(from: randomColor(&random), to: randomColor(&random), direction: randomDirection(&random))
        SampleDrawing.draw(kind: index % classNames.count, on: &canvas, random: &random)
        canvas.addGrain(key: random.next(), amplitude: 6)
        return canvas.image
    }

    static func randomColor(_ random: inout KeyedRandom) -> (Int, Int, Int) {
        (random.below(256), random.below(256), random.below(256))
    }

    /// One of 16 integer directions spread around the circle.
    static func randomDirection(_ random: inout KeyedRandom) -> (Int, Int) {
        let directions = [(8, 0), (7, 3), (6, 6), (3, 7), (0, 8), (-3, 7), (-6, 6), (-7, 3),
                          (-8, 0), (-7, -3), (-6, -6), (-3, -7), (0, -8), (3, -7), (6, -6), (7, -3)]
        return directions[random.below(directions.count)]
    }

    static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// Deletes a folder tree this module created (regular files and folders only).
    static func removeTree(_ path: String) {
        guard let directory = opendir(path) else {
            unlink(path)
            return
        }
        var children: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { children.append(path + "/" + name) }
        }
        closedir(directory)
        for child in children {
            if isDirectory(child) { removeTree(child) } else { unlink(child) }
        }
        rmdir(path)
    }
}

/// Why the sample set could not be produced.
public enum SampleDataError: Error, Equatable, CustomStringConvertible {
    /// A folder or file under the cache directory could not be created.
    case cannotWrite(path: String, reason: String)
    /// JPEG encoding failed.
    case encodingFailed(reason: String)

    public var description: String {
        switch self {
        case .cannotWrite(let path, let reason): return "\(path): cannot write sample data: \(reason)"
        case .encodingFailed(let reason): return "sample data: \(reason)"
        }
    }
}

/// An RGB canvas with the few drawing operations the sample classes use.
struct Canvas {
    let width: Int
    let height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
    }

    var image: RGBImage { RGBImage(width: width, height: height, pixels: pixels) }

    /// Blends `color` into pixel (x, y) with opacity alpha/256.
    mutating func blend(_ x: Int, _ y: Int, _ color: (Int, Int, Int), alpha: Int = 256) {
        let i = (y * width + x) * 3
        pixels[i] = UInt8((Int(pixels[i]) * (256 - alpha) + color.0 * alpha) >> 8)
        pixels[i + 1] = UInt8((Int(pixels[i + 1]) * (256 - alpha) + color.1 * alpha) >> 8)
        pixels[i + 2] = UInt8((Int(pixels[i + 2]) * (256 - alpha) + color.2 * alpha) >> 8)
    }

    /// A linear gradient from `a` to `b` along an integer direction.
    mutating func fillGradient(from a: (Int, Int, Int), to b: (Int, Int, Int), direction: (Int, Int)) {
        let corners = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)].map { $0.0 * direction.0 + $0.1 * direction.1 }
        let low = corners.min()!, span = max(1, corners.max()! - low)
        for y in 0..<height {
            for x in 0..<width {
                let t = ((x * direction.0 + y * direction.1 - low) << 8) / span
                blend(x, y, a)
                blend(x, y, b, alpha: t)
            }
        }
    }

    /// Adds small per-pixel noise, a film-grain texture, from a hash of (key, pixel).
    mutating func addGrain(key: UInt64, amplitude: Int) {
        for i in 0..<pixels.count {
            let noise = Int(KeyedRandom.mix(key &+ UInt64(i) &* KeyedRandom.golden) % UInt64(2 * amplitude + 1)) - amplitude
            pixels[i] = UInt8(min(255, max(0, Int(pixels[i]) + noise)))
        }
    }
}

/// The eight structures of the sample classes.
enum SampleDrawing {
    static func draw(kind: Int, on canvas: inout Canvas, random: inout KeyedRandom) {
        let w = canvas.width, h = canvas.height
        let side = min(w, h)
        switch kind {
        case 0:  // disks
            for _ in 0..<(2 + random.below(4)) {
                let cx = random.below(w), cy = random.below(h), r = side / 10 + random.below(side / 4)
                let color = SampleData.randomColor(&random)
                for y in 0..<h {
                    for x in 0..<w where (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r {
                        canvas.blend(x, y, color, alpha: 220)
                    }
                }
            }
        case 1:  // stripes: a triangle wave across a direction
            let direction = SampleData.randomDirection(&random)
            let period = 8 * (4 + random.below(side / 4))
            let color = SampleData.randomColor(&random)
            for y in 0..<h {
                for x in 0..<w {
                    let phase = ((x * direction.0 + y * direction.1) % period + period) % period
                    let wave = abs(2 * phase - period) * 256 / period
                    canvas.blend(x, y, color, alpha: wave)
                }
            }
        case 2:  // checks
            let cell = 3 + random.below(side / 6)
            let offset = (random.below(cell), random.below(cell))
            let color = SampleData.randomColor(&random)
            for y in 0..<h {
                for x in 0..<w where ((x + offset.0) / cell + (y + offset.1) / cell) % 2 == 0 {
                    canvas.blend(x, y, color, alpha: 200)
                }
            }
        case 3:  // boxes
            for _ in 0..<(2 + random.below(5)) {
                let x0 = random.below(w), y0 = random.below(h)
                let x1 = min(w, x0 + side / 8 + random.below(side / 2)), y1 = min(h, y0 + side / 8 + random.below(side / 2))
                let color = SampleData.randomColor(&random)
                for y in y0..<y1 {
                    for x in x0..<x1 { canvas.blend(x, y, color, alpha: 230) }
                }
            }
        case 4:  // rings around a centre
            let cx = random.below(w), cy = random.below(h), period = 4 + random.below(side / 5)
            let color = SampleData.randomColor(&random)
            for y in 0..<h {
                for x in 0..<w {
                    let distance = Double((x - cx) * (x - cx) + (y - cy) * (y - cy)).squareRoot()
                    let phase = Int(distance * 256) / period % 256
                    canvas.blend(x, y, color, alpha: abs(2 * phase - 256))
                }
            }
        case 5:  // clouds: value noise on a coarse grid, bilinearly interpolated
            let cell = 6 + random.below(side / 4)
            let gridWidth = w / cell + 2, gridHeight = h / cell + 2
            let grid = (0..<(gridWidth * gridHeight)).map { _ in random.below(257) }
            let color = SampleData.randomColor(&random)
            for y in 0..<h {
                for x in 0..<w {
                    let gx = x / cell, gy = y / cell, fx = (x % cell) * 256 / cell, fy = (y % cell) * 256 / cell
                    let top = grid[gy * gridWidth + gx] * (256 - fx) + grid[gy * gridWidth + gx + 1] * fx
                    let bottom = grid[(gy + 1) * gridWidth + gx] * (256 - fx) + grid[(gy + 1) * gridWidth + gx + 1] * fx
                    canvas.blend(x, y, color, alpha: (top * (256 - fy) + bottom * fy) >> 16)
                }
            }
        case 6:  // triangles, by the signs of three edge functions
            for _ in 0..<(1 + random.below(3)) {
                let p = (0..<3).map { _ in (random.below(w), random.below(h)) }
                let color = SampleData.randomColor(&random)
                func edge(_ a: (Int, Int), _ b: (Int, Int), _ x: Int, _ y: Int) -> Int {
                    (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0)
                }
                for y in 0..<h {
                    for x in 0..<w {
                        let e = [edge(p[0], p[1], x, y), edge(p[1], p[2], x, y), edge(p[2], p[0], x, y)]
                        if e.allSatisfy({ $0 >= 0 }) || e.allSatisfy({ $0 <= 0 }) { canvas.blend(x, y, color, alpha: 230) }
                    }
                }
            }
        default:  // waves: two crossing triangle waves
            let first = SampleData.randomDirection(&random), second = SampleData.randomDirection(&random)
            let period = 8 * (3 + random.below(side / 5))
            let color = SampleData.randomColor(&random)
            for y in 0..<h {
                for x in 0..<w {
                    let a = ((x * first.0 + y * first.1) % period + period) % period
                    let b = ((x * second.0 + y * second.1) % period + period) % period
                    let wave = (abs(2 * a - period) + abs(2 * b - period)) * 128 / period
                    canvas.blend(x, y, color, alpha: wave)
                }
            }
        }
    }
}
