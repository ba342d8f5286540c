import ArgumentParser
import BuildInfo
import CommandOptions
import Images
import Model
import Wire
import Worker

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the version of this build and of the native libraries it uses, and check that each works.")

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.bootstrap()
        BLASKernels.useFastestKernels()
        print("scvae \(BuildInfo.description)")
        print("libzmq \(zmqLibraryVersion())")
        var c: [Float] = [0]
        BLAS.sgemm(m: 1, n: 1, k: 2, a: [1, 2], lda: 2, b: [3, 4], ldb: 1, c: &c, ldc: 1)
        print("OpenBLAS kernels: \(BLAS.coreName)")
        print("OpenBLAS sgemm check: [1 2]·[3 4]^T = \(c[0]) (expected 11.0)")
        print("convolutions: \(Conv2dDirect.kernelDescription)")
        let image = RGBImage(width: 8, height: 8, pixels: [UInt8](repeating: 128, count: 8 * 8 * 3))
        let jpeg = try encodeJPEG(image)
        let back = try decodeImage(jpeg)
        print("libjpeg-turbo round trip: \(jpeg.count) bytes, decoded \(back.width)x\(back.height)")
    }
}
