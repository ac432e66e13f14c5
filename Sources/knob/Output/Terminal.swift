import Foundation

/// The terminal a standard stream writes to, when it is one.
struct Terminal {
    /// 1 for standard output, 2 for standard error.
    let descriptor: Int32

    /// The terminal on `descriptor`, or nil when it is a file or a pipe.
    init?(descriptor: Int32) {
        guard isatty(descriptor) == 1 else { return nil }
        self.descriptor = descriptor
    }

    /// Columns and rows, asked each time (a window can be resized); 80×24 when the terminal does not say.
    var size: (columns: Int, rows: Int) {
        var window = winsize()
        guard ioctl(descriptor, UInt(TIOCGWINSZ), &window) == 0, window.ws_col > 0, window.ws_row > 0 else { return (80, 24) }
        return (Int(window.ws_col), Int(window.ws_row))
    }

    /// Writes `text` as is, unbuffered, after what `print` still holds.
    func write(_ text: String) {
        fflush(nil)
        (descriptor == 2 ? FileHandle.standardError : FileHandle.standardOutput).write(Data(text.utf8))
    }

    /// Back to the start of the line, and the line erased.
    static let clearLine = "\r\u{1B}[K"
    /// The cursor home and the screen erased.
    static let clearScreen = "\u{1B}[H\u{1B}[2J"
}

/// `text` cut to `width` characters, its end replaced by `…` when cut.
func fitted(_ text: String, width: Int) -> String {
    guard text.count > width else { return text }
    guard width > 1 else { return String(text.prefix(max(width, 0))) }
    return String(text.prefix(width - 1)) + "…"
}
