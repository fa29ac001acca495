import Foundation

/// The longest context one sequence may reach on this rank, from what memory allows: the KV
/// cache of every attention layer grows by one row per token (and doubles its capacity as it
/// fills), and a prefill pass holds one head's attention scores, `[prefill_chunk, context]`.
/// Mamba state and MLP/MoE activations do not grow with the context, so a model without
/// attention layers has no limit here. The memory is the machine's physical memory, or less
/// where the process is limited (cgroup `memory.max`, `ulimit -v`).
public struct ContextLimit: Sendable {
    /// Bytes one more token of context costs this rank at the worst moment (K and V rows of
    /// every attention layer with the doubling slack of a growing cache, a row of prefill
    /// scores, and the decode scores of every local head).
    public let bytesPerToken: Int
    /// The memory the context may take.
    public let memoryBytes: Int
    let attentionLayers: Int

    public init(model: NemotronH, prefillChunk: Int, memoryBytes: Int = ContextLimit.availableMemory()) {
        let config = model.config
        attentionLayers = config.count(of: .attention)
        let kvRow = 2 * model.plan.localKVHeads * config.headDim * MemoryLayout<Float>.size
        bytesPerToken =
            attentionLayers == 0
            ? 0
            : 2 * attentionLayers * kvRow + max(1, prefillChunk) * MemoryLayout<Float>.size + 2 * model.plan.localHeads
                * MemoryLayout<Float>.size
        self.memoryBytes = memoryBytes
    }

    /// The most tokens of context that fit (`Int.max` without attention layers).
    public var maxTokens: Int { bytesPerToken == 0 ? Int.max : memoryBytes / bytesPerToken }

    /// Throws when a prompt of `tokens` tokens cannot fit, naming the limit and what sets it.
    public func check(promptTokens tokens: Int) throws {
        guard tokens > maxTokens else { return }
        throw NemotronError.invalidTokens(
            reason:
                "the prompt has \(tokens) tokens, more than the \(maxTokens) whose context fits in the memory "
                + "available to this process (\(Self.gibibytes(memoryBytes)): physical memory, or less under a cgroup "
                + "or ulimit -v; \(bytesPerToken) bytes per token of context on this rank for the KV cache of "
                + "\(attentionLayers) attention layer(s) and the prefill's attention scores); shorten the prompt, "
                + "lower prefill_chunk, or split the model over more ranks")
    }

    static func gibibytes(_ bytes: Int) -> String { String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }

    /// Physical memory, lowered by the process's cgroup limit (v2 `memory.max`, v1
    /// `memory.limit_in_bytes`) and its address-space limit (`ulimit -v`) where they are set.
    public static func availableMemory() -> Int {
        var limit = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
                let bytes = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes > 0
            {
                limit = min(limit, bytes)
            }
        }
        var addressSpace = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &addressSpace) == 0, addressSpace.rlim_cur != rlim_t.max {
            limit = min(limit, Int(clamping: addressSpace.rlim_cur))
        }
        return limit
    }
}
