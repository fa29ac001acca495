import CKernels

/// One matrix product `y[T, w.rows] = x[T, w.cols] · wᵀ` (rows of x `w.cols` apart, of y `w.rows`).
struct Product {
    let x: UnsafePointer<Float>
    let tokens: Int
    let w: WeightMatrix
    let y: UnsafeMutablePointer<Float>
}

/// How a streaming kernel reads its activations (`MatMul.streamingInput` picks it per weight).
enum StreamingInput: Hashable {
    /// The f32 rows as they are (f32 and f16 weights; quantized weights in exact mode).
    case float
    /// The f32 rows rearranged for the bf16 kernel (`ck_gemv_bf16_prepare`).
    case bf16Order
    /// The rows rounded to bf16, each padded with zeros to whole 32-column steps, for the
    /// AVX512-BF16 kernel of decode batches (`ck_gemv_bf16_dp`).
    case bf16
    /// The f32 rows with tokens across: `[cols][tokens rounded up to 16]`, for the f32-FMA
    /// kernel of decode batches (`ck_gemv_bf16_across`).
    case tokensAcross
    /// int8 packages per 32 inputs (`QuantizedRows`) for the integer dot products.
    case int8
}

/// Decode-sized products (a few tokens) run by streaming each weight row once, in 64-row blocks
/// the threads claim (the cores' speeds differ under outside load). Products that do not depend
/// on one another (q, k and v; a MoE layer's shared and chosen experts) share one dispatch: the
/// threads claim blocks across all of them, so a decode step pays one wake-up and one join per
/// group instead of one per matrix (a small expert is 8 blocks, less than a thread's wake-up).
/// Each distinct input is prepared once for every product that reads it.
enum StreamingProducts {
    static let blockRows = 64

    /// Runs `products`, which all stream (`MatMul.streamingInput` not nil).
    static func run(_ products: [Product], _ context: KernelContext) {
        let workspace = context.workspace
        let inputs = products.map { MatMul.streamingInput($0, context.policy)! }
        let prepared = prepare(products, inputs, workspace)
        let kernels = products.indices.map { MatMul.streamingKernel(products[$0], input: prepared[$0]) }
        // Block b of the group is block b − first[i] of product i.
        var first: [Int] = [0]
        for p in products { first.append(first.last! + (p.w.rows + blockRows - 1) / blockRows) }
        let shared = UncheckedSendable((kernels, first, products.map(\.w.rows)))
        workspace.pool.forBlocks(first.last!, block: 1) { blocks in
            let (kernels, first, rows) = shared.value
            var i = 0
            for b in blocks {
                while b >= first[i + 1] { i += 1 }
                let start = (b - first[i]) * blockRows
                kernels[i](start..<min(rows[i], start + blockRows))
            }
        }
    }

    /// The input each product's kernel reads: `x` itself, or `x` prepared (rearranged, or
    /// quantized unless the block boundary already quantized it: `Workspace.quantizedRows`), in
    /// one workspace arena, once per distinct input.
    private static func prepare(_ products: [Product], _ inputs: [StreamingInput], _ workspace: Workspace)
        -> [PreparedInput]
    {
        struct Key: Hashable {
            let x: UnsafePointer<Float>
            let tokens: Int
            let cols: Int
            let input: StreamingInput
        }
        func bytes(_ key: Key) -> Int {
            switch key.input {
            case .float: return 0
            case .bf16Order: return key.tokens * key.cols * MemoryLayout<Float>.size
            case .bf16: return key.tokens * HalfKernels.bf16RowStride(key.cols) * MemoryLayout<UInt16>.size
            case .tokensAcross: return ck_tokens_across_width(key.tokens) * key.cols * MemoryLayout<Float>.size
            case .int8:
                if let made = workspace.quantizedRows, made.holds(key.x, tokens: key.tokens, width: key.cols) {
                    return 0
                }
                return key.tokens * QuantizedRows.stride(width: key.cols)
            }
        }
        let keys = zip(products, inputs).map { Key(x: $0.x, tokens: $0.tokens, cols: $0.w.cols, input: $1) }
        var offsets: [Key: Int] = [:]
        var total = 0
        for key in keys where offsets[key] == nil {
            offsets[key] = total
            total += (bytes(key) + 63) / 64 * 64
        }
        let arena = workspace.alignedBytes(.streamingInputs, count: total)
        var made: [Key: PreparedInput] = [:]
        let boundary = workspace.quantizedRows
        return keys.map { key in
            if key.input == .int8, let boundary, boundary.holds(key.x, tokens: key.tokens, width: key.cols) {
                workspace.reusedQuantizedRows += 1
                return .int8(boundary)
            }
            if let input = made[key] { return input }
            let base = arena + offsets[key]!
            let input: PreparedInput
            switch key.input {
            case .float: input = .float(key.x)
            case .bf16Order:
                let prepared = base.assumingMemoryBound(to: Float.self)
                for t in 0..<key.tokens {
                    HalfKernels.prepareBF16Input(key.x + t * key.cols, into: prepared + t * key.cols, cols: key.cols)
                }
                input = .float(UnsafePointer(prepared))
            case .bf16:
                let stride = HalfKernels.bf16RowStride(key.cols)
                let rows = base.assumingMemoryBound(to: UInt16.self)
                for t in 0..<key.tokens {
                    HalfKernels.roundToBF16(
                        key.x + t * key.cols, into: rows + t * stride, cols: key.cols, stride: stride)
                }
                input = .bf16(UnsafePointer(rows), stride: stride)
            case .tokensAcross:
                let columns = base.assumingMemoryBound(to: Float.self)
                ck_tokens_across(key.x, key.cols, key.tokens, key.cols, columns)
                input = .tokensAcross(UnsafePointer(columns))
            case .int8:
                let rows = QuantizedRows(for: key.x, rows: key.tokens, width: key.cols, at: base)
                rows.quantize(rows: 0..<key.tokens)
                input = .int8(rows)
            }
            made[key] = input
            return input
        }
    }
}

/// A product's activations as its streaming kernel reads them.
enum PreparedInput {
    case float(UnsafePointer<Float>)
    case bf16(UnsafePointer<UInt16>, stride: Int)
    case tokensAcross(UnsafePointer<Float>)
    case int8(QuantizedRows)
}
