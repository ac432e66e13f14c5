// Notation: for x ≤ 0, eˣ = 2ᵏ·e^f with k = round(x/ln 2) and |f| ≤ ln 2/2; e^f by its Taylor
// polynomial to degree 13 (truncation error below 1e-17 relative), 2ᵏ built from the exponent bits.

/// eˣ for x ≤ 0, as accurate as the C library's `exp` (a few ulp) and several times faster: it is
/// inlined, has no branches in its main path and vectorizes in loops. Below −708 it returns 0.
@inline(__always)
func expNegative(_ x: Double) -> Double {
    if x < -708 { return 0 }
    // Adding and subtracting 1.5·2⁵² rounds to the nearest whole number without a library call.
    let shifter = 6_755_399_441_055_744.0
    let k = (x * 1.4426950408889634 + shifter) - shifter
    // f = x − k·ln 2, with ln 2 split in two parts so the product is exact.
    let f = (x - k * 0.6931471803691238) - k * 1.9082149292705877e-10
    return taylorExp(f) * Double(bitPattern: UInt64(Int64(k) + 1023) << 52)
}

/// `expNegative` of four values at once, with the same polynomial, in vector instructions. The
/// integer k is read from the bits of x/ln 2 + 1.5·2⁵² (its low mantissa bits hold k), so no
/// conversion leaves the vector registers.
@inline(__always)
func expNegative(_ x: SIMD4<Double>) -> SIMD4<Double> {
    let underflow = x .< -708
    let x = x.replacing(with: -708, where: underflow)
    let shifter = SIMD4<Double>(repeating: 6_755_399_441_055_744.0)
    let t = x * 1.4426950408889634 + shifter
    let k = t - shifter
    let f = (x - k * 0.6931471803691238) - k * 1.9082149292705877e-10
    let p = taylorExp(f)
    let exponent = (unsafeBitCast(t, to: SIMD4<Int64>.self) &- unsafeBitCast(shifter, to: SIMD4<Int64>.self) &+ 1023) &<< 52
    return (p * unsafeBitCast(exponent, to: SIMD4<Double>.self)).replacing(with: 0, where: underflow)
}

/// What the Taylor polynomial needs of its argument: one Double, or several in a vector.
protocol TaylorArgument {
    static func constant(_ c: Double) -> Self
    static func * (lhs: Self, rhs: Self) -> Self
    static func + (lhs: Self, rhs: Double) -> Self
}

extension Double: TaylorArgument {
    @inline(__always) static func constant(_ c: Double) -> Double { c }
}

extension SIMD4: TaylorArgument where Scalar == Double {
    @inline(__always) static func constant(_ c: Double) -> SIMD4<Double> { SIMD4(repeating: c) }
}

/// e^f for |f| ≤ ln 2/2 by Horner's rule on the Taylor polynomial of degree 13.
@inline(__always)
func taylorExp<T: TaylorArgument>(_ f: T) -> T {
    var p = T.constant(1.0 / 6_227_020_800)
    p = p * f + 1.0 / 479_001_600
    p = p * f + 1.0 / 39_916_800
    p = p * f + 1.0 / 3_628_800
    p = p * f + 1.0 / 362_880
    p = p * f + 1.0 / 40_320
    p = p * f + 1.0 / 5_040
    p = p * f + 1.0 / 720
    p = p * f + 1.0 / 120
    p = p * f + 1.0 / 24
    p = p * f + 1.0 / 6
    p = p * f + 0.5
    p = p * f + 1
    p = p * f + 1
    return p
}
