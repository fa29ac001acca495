/// Memory every rank on the node maps: `segments[r]` is rank r's part, zero-filled at creation.
/// Freed (collectively) by `free()` or when released.
public final class SharedWindow {
    public let segments: [UnsafeMutableRawPointer]
    private var release: (() -> Void)?

    init(segments: [UnsafeMutableRawPointer], release: @escaping () -> Void) {
        self.segments = segments
        self.release = release
    }

    deinit { free() }

    /// Collective: every rank must call it.
    public func free() {
        release?()
        release = nil
    }
}
