import Synchronization

/// SplitMix64: a small, fast generator whose whole sequence follows from its seed.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The simulator's single source of randomness, seeded, shared safely between tasks.
final class RandomSource: Sendable {
    private let generator: Mutex<SplitMix64>

    init(seed: UInt64) { self.generator = Mutex(SplitMix64(seed: seed)) }

    /// Restarts the sequence from `seed`.
    func reseed(_ seed: UInt64) { generator.withLock { $0 = SplitMix64(seed: seed) } }

    /// A uniform value in 0..<1.
    func unit() -> Double { generator.withLock { Double.random(in: 0..<1, using: &$0) } }

    /// A uniform integer in `range`.
    func integer(in range: ClosedRange<Int>) -> Int { generator.withLock { Int.random(in: range, using: &$0) } }

    /// Whether an event of probability `rate` happens.
    func chance(_ rate: Double) -> Bool { rate > 0 && unit() < rate }
}
