import Foundation

/// A metrics file read as the `File` collector reads it: from its start, followed as it grows, and
/// read again from its start when it is replaced or truncated; each line through the scraper.
public final class MetricsFileReader {
    public let path: String
    private let tail: FileTail
    private var lines = LineReader()
    private let scraper: MetricsScraper

    public init(path: String, scraper: MetricsScraper) {
        self.path = path
        tail = FileTail(path: path)
        self.scraper = scraper
    }

    /// The reports of the lines completed since the last read, and how many bytes and lines were read.
    public func read() -> (reports: [MetricReport], bytes: Int, lines: Int) {
        let chunk = tail.read()
        if tail.startedOver() { lines = LineReader(startingAt: 0) }
        let complete = lines.feed(chunk)
        return (complete.flatMap { scraper.reports(in: $0) }, chunk.count, complete.count)
    }

    /// The reports of an unfinished last line, once the file is known to be complete.
    public func finish() -> [MetricReport] {
        lines.finish().map { scraper.reports(in: $0) } ?? []
    }
}
