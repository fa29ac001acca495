/// Near-equal contiguous splits of `0..<count`: the one range splitter that thread pools,
/// collectives and the tensor-parallel plan share.
public enum Partition {
    /// Part `index` of `count` items split `parts` ways: the first `count % parts` parts get
    /// one item more.
    public static func part(_ count: Int, _ parts: Int, _ index: Int) -> Range<Int> {
        let base = count / parts
        let extra = count % parts
        let start = index * base + min(index, extra)
        return start..<start + base + (index < extra ? 1 : 0)
    }

    /// Part `index` of `count` items split `parts` ways in whole units of `alignment` items
    /// (`count` must be a multiple of `alignment`): a split that never cuts a block.
    public static func part(_ count: Int, _ parts: Int, _ index: Int, alignment: Int) -> Range<Int> {
        precondition(
            alignment >= 1 && count % alignment == 0, "\(count) items do not divide into blocks of \(alignment)")
        let units = part(count / alignment, parts, index)
        return units.lowerBound * alignment..<units.upperBound * alignment
    }

    /// Contiguous parts when `count` ≥ `parts`; otherwise (`parts` a multiple of `count`) each
    /// item is replicated on `parts / count` consecutive indices and index `index` holds one.
    public static func splitOrReplicate(_ count: Int, _ parts: Int, _ index: Int) -> Range<Int> {
        guard parts > count, count > 0 else { return part(count, parts, index) }
        let item = index / (parts / count)
        return item..<item + 1
    }
}
