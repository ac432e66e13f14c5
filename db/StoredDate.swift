import Foundation
import GRDB

/// Dates as the store keeps them: GRDB's text, "yyyy-MM-dd HH:mm:ss.SSS" in UTC, made without a DateFormatter. Every
/// trial's start and end and every batch of reports is stamped, and GRDB's formatter (ICU's) cost as much as the
/// statement that stored the date.
enum StoredDate {
    /// The text GRDB stores for `date`: the same characters as `date.databaseValue`, whose formatter rounds to the
    /// nearest millisecond since 1970. Dates before 1970 or from 10000 on are left to GRDB (its calendar is not the
    /// proleptic Gregorian one below before 1582).
    static func text(_ date: Date) -> String {
        let milliseconds = (date.timeIntervalSinceReferenceDate + Date.timeIntervalBetween1970AndReferenceDate) * 1000
        guard milliseconds >= 0, milliseconds < 253_402_300_799_999 else {
            guard case .string(let text) = date.databaseValue.storage else { preconditionFailure("a date is stored as text") }
            return text
        }
        let whole = Int64(milliseconds.rounded())
        let days = whole / 86_400_000
        var rest = whole % 86_400_000
        let hour = rest / 3_600_000
        rest %= 3_600_000
        let minute = rest / 60_000
        rest %= 60_000
        let second = rest / 1000
        let millisecond = rest % 1000
        // Days since 1970-01-01 to a Gregorian date (Howard Hinnant's civil_from_days).
        let z = days + 719_468
        let era = z / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        var bytes = [UInt8]()
        bytes.reserveCapacity(23)
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            var value = value
            for _ in 0..<count {
                bytes.append(UInt8(48 + value / divisor))
                value %= divisor
                divisor /= 10
            }
        }
        digits(year, 4); bytes.append(45); digits(month, 2); bytes.append(45); digits(day, 2)
        bytes.append(32)
        digits(hour, 2); bytes.append(58); digits(minute, 2); bytes.append(58); digits(second, 2); bytes.append(46); digits(millisecond, 3)
        return String(decoding: bytes, as: UTF8.self)
    }
}
