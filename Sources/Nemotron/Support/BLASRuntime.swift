import CKernels
import COpenBLAS
import Foundation

/// OpenBLAS 0.3.21 (Debian 12) does not recognise recent CPUs (e.g. Intel model 207) and silently
/// falls back to SSE3 "Prescott" kernels, about 7× slower. It reads `OPENBLAS_CORETYPE` only when
/// the library loads, before `main`, so the fix is to set it and re-execute the program once.
/// A core type the user sets is always respected.
///
/// The kernels call OpenBLAS single-threaded from the pool's threads (`Workspace` sets one BLAS
/// thread), so the same re-execution sets `OPENBLAS_NUM_THREADS=1` when it is unset: OpenBLAS then
/// starts none of its own threads as it loads (one per CPU otherwise, which would stay idle).
public enum BLASRuntime {
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"
    public static let threadsVariable = "OPENBLAS_NUM_THREADS"

    /// The OpenBLAS kernel set in use (e.g. "SkylakeX", "Haswell", "Prescott").
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The widest CKernels code path this CPU runs.
    public static var kernelISA: String { String(cString: ck_isa()) }

    /// The core type matching this CPU's features, from /proc/cpuinfo flags.
    public static func preferredCoreType(cpuFlags: Set<String>) -> String? {
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(cpuFlags.contains) {
            return "SkylakeX"
        }
        if ["avx2", "fma"].allSatisfy(cpuFlags.contains) { return "Haswell" }
        return nil
    }

    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
            let colon = line.firstIndex(of: ":")
        else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Re-executes this process with `OPENBLAS_CORETYPE` set when it is unset and the CPU
    /// supports a better kernel set than a detection miss would give, and with
    /// `OPENBLAS_NUM_THREADS=1` when that is unset. Returns normally when neither is to be set.
    public static func ensureEnvironment() {
        let environment = ProcessInfo.processInfo.environment
        var missing: [(String, String)] = []
        if environment[coreTypeVariable] == nil, let preferred = preferredCoreType(cpuFlags: cpuFlags()) {
            missing.append((coreTypeVariable, preferred))
        }
        if environment[threadsVariable] == nil { missing.append((threadsVariable, "1")) }
        guard !missing.isEmpty else { return }
        for (name, value) in missing { setenv(name, value, 1) }
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        // The executable's own path, not /proc/self/exe: the kernel names a process after the
        // file it executes, and `ps`, `top` and `pkill nemotron-run` would see "exe".
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "/proc/self/exe"
        execv(path, &argv)
        // execv only returns on failure; carry on with whatever OpenBLAS detected.
        for pointer in argv { free(pointer) }
    }
}
