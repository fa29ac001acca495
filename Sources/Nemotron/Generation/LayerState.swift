/// What one layer keeps between forward passes of a sequence: Mamba layers their conv and SSM
/// state, attention layers their KV cache, MLP and MoE layers nothing.
public enum LayerState {
    case mamba(MambaState)
    case attention(KVCache)
    case stateless
}

/// Per-sequence Mamba2 state for this rank's heads and groups (docs/architecture.md, "State").
public final class MambaState {
    /// `[K−1, Dc_local]` last raw (pre-conv) xBC inputs, oldest first; zeros at sequence start.
    let conv: UnsafeMutablePointer<Float>
    /// `[nh_local, P, N]` SSM state, fp32.
    let ssm: UnsafeMutablePointer<Float>

    init(convCount: Int, ssmCount: Int) {
        conv = .allocate(capacity: max(convCount, 1))
        ssm = .allocate(capacity: max(ssmCount, 1))
        conv.initialize(repeating: 0, count: convCount)
        ssm.initialize(repeating: 0, count: ssmCount)
    }

    deinit {
        conv.deallocate()
        ssm.deallocate()
    }
}

/// Per-sequence keys and values of this rank's KV heads, `[capacity, hkv_local·dh]` each.
/// No positional encoding is applied (Nemotron-H has none), so entries are stored as computed.
public final class KVCache {
    let width: Int
    private(set) var capacity: Int
    private(set) var count = 0
    private(set) var keys: UnsafeMutablePointer<Float>
    private(set) var values: UnsafeMutablePointer<Float>

    init(width: Int, capacity: Int) {
        self.width = width
        self.capacity = max(capacity, 1)
        keys = .allocate(capacity: self.capacity * width)
        values = .allocate(capacity: self.capacity * width)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Appends `tokens` rows of keys and values.
    func append(keys newKeys: UnsafePointer<Float>, values newValues: UnsafePointer<Float>, tokens: Int) {
        if count + tokens > capacity { grow(to: max(count + tokens, capacity * 2)) }
        (keys + count * width).update(from: newKeys, count: tokens * width)
        (values + count * width).update(from: newValues, count: tokens * width)
        count += tokens
    }

    private func grow(to newCapacity: Int) {
        let newKeys = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * width)
        let newValues = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * width)
        newKeys.update(from: keys, count: count * width)
        newValues.update(from: values, count: count * width)
        keys.deallocate()
        values.deallocate()
        keys = newKeys
        values = newValues
        capacity = newCapacity
    }
}

/// Everything one sequence carries between forward passes.
public final class SequenceState {
    public let layers: [LayerState]
    /// Tokens processed so far.
    public internal(set) var position = 0

    init(layers: [LayerState]) { self.layers = layers }
}
