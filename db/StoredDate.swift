import Foundation
import GRDB

/// Dates as the store keeps them: GRDB's text, "yyyy-MM-dd HH:mm:ss.SSS" in UTC, made and read without a DateFormatter
/// or a Calendar. Every trial's start and end and every batch of reports is stamped, and GRDB's formatter (ICU's) cost
/// as much as the statement that stored the date; reading one through GRDB's calendar loads ICU's locale and calendar
/// data, 4.5 MB of a process's memory, for arithmetic.
enum StoredDate {
    /// The date a column holds: the text `text(_:)` makes read back directly; anything else (another layout, a number,
    /// NULL) as GRDB reads it.
    @Sendable static func date(_ value: DatabaseValue) -> Date? {
        if case .string(let text) = value.storage, let date = parse(text) { return date }
        return Date.fromDatabaseValue(value)
    }

    /// `column` of `row` as a date, nil when NULL.
    static func decode(_ row: Row, _ column: String) throws -> Date? {
        if row.hasColumn(column), case .string(let text) = (row[column] as DatabaseValue).storage, let date = parse(text) { return date }
        // GRDB's reading, and its error when the column holds no date.
        return try row.decode(forColumn: column)
    }

    /// The date of a text `text(_:)` makes (years 1970 to 9999, days that exist); nil for any other text.
    static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { bytes -> Date? in
            // "yyyy-MM-dd HH:mm:ss.SSS": the separators where they belong.
            let separators: [(Int, UInt8)] = [(4, 45), (7, 45), (10, 32), (13, 58), (16, 58), (19, 46)]
            guard bytes.count == 23, separators.allSatisfy({ bytes[$0.0] == $0.1 }) else { return nil }
            func number(_ start: Int, _ count: Int) -> Int64? {
                var value: Int64 = 0
                for index in start..<(start + count) {
                    let digit = bytes[index] &- 48
                    guard digit < 10 else { return nil }
                    value = value * 10 + Int64(digit)
                }
                return value
            }
            guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
                  let minute = number(14, 2), let second = number(17, 2), let millisecond = number(20, 3),
                  year >= 1970, month >= 1, month <= 12, day >= 1, hour < 24, minute < 60, second < 60 else { return nil }
            let leap: Bool = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            let february: Int64 = leap ? 29 : 28
            let monthDays: [Int64] = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            guard day <= monthDays[Int(month - 1)] else { return nil }
            // A Gregorian date to days since 1970-01-01 (Howard Hinnant's days_from_civil).
            let shiftedYear = month <= 2 ? year - 1 : year
            let era = shiftedYear / 400
            let yearOfEra = shiftedYear - era * 400
            let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
            let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
            let days = era * 146_097 + dayOfEra - 719_468
            let seconds = days * 86400 + hour * 3600 + minute * 60 + second
            return Date(timeIntervalSinceReferenceDate: Double(seconds - Int64(Date.timeIntervalBetween1970AndReferenceDate))
                        + Double(millisecond) / 1000)
        }
    }

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
