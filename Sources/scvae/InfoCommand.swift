import ArgumentParser
import Foundation
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
        print(kernelLine(KernelVariant.selected))
        print("convolutions: \(Conv2dDirect.kernelDescription())")
        let image = RGBImage(width: 8, height: 8, pixels: [UInt8](repeating: 128, count: 8 * 8 * 3))
        let jpeg = try encodeJPEG(image)
        let back = try decodeImage(jpeg)
        print("libjpeg-turbo round trip: \(jpeg.count) bytes, decoded \(back.width)x\(back.height)")
    }

    /// The variant our kernels run, what chose it, and what else this CPU could run.
    private func kernelLine(_ selected: KernelVariant) -> String {
        let environment = ProcessInfo.processInfo.environment
        let reason: String
        if environment["SCVAE_DIRECT_CONV"] == "0" {
            reason = "SCVAE_DIRECT_CONV=0"
        } else if let forced = environment["SCVAE_KERNELS"], !forced.isEmpty {
            reason = "SCVAE_KERNELS=\(forced)"
        } else {
            reason = "the fastest this CPU runs"
        }
        let supported = KernelVariant.supported.map(\.rawValue).joined(separator: ", ")
        return "kernels: \(selected.rawValue), \(selected) (\(reason); this CPU runs \(supported))"
    }
}
