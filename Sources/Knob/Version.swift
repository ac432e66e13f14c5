/// knob's version, as `knob --version` and `knobd --version` print it.
public enum KnobVersion {
    public static let current = "0.2.0"
}
