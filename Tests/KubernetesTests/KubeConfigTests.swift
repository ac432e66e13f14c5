import Foundation
import Testing
@testable import Kubernetes

private func folder() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("knob-kube-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

private func write(_ text: String, _ path: String, executable: Bool = false) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    if executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path) }
}

private let caPEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

/// A kubeconfig with two contexts; `user` is the YAML of the `prod` context's user.
private func kubeconfig(user: String, cluster: String = "certificate-authority-data: \(Data(caPEM.utf8).base64EncodedString())") -> String {
    """
    apiVersion: v1
    kind: Config
    current-context: prod
    clusters:
    - name: prod-cluster
      cluster:
        server: https://10.0.0.1:6443/
        \(cluster)
    - name: dev-cluster
      cluster:
        server: https://127.0.0.1:8443
        insecure-skip-tls-verify: true
    contexts:
    - name: prod
      context: {cluster: prod-cluster, user: prod-user, namespace: training}
    - name: dev
      context: {cluster: dev-cluster, user: dev-user}
    users:
    - name: prod-user
      user:
    \(user.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n"))
    - name: dev-user
      user: {token: dev-token}
    """
}

@Suite struct KubeConfigTests {
    @Test func aTokenUserAndTheCurrentContext() throws {
        let dir = folder()
        try write(kubeconfig(user: "token: abc123"), "\(dir)/config")
        let access = try ClusterAccess.fromKubeconfig(files: ["\(dir)/config"])
        #expect(access.server == "https://10.0.0.1:6443")
        #expect(access.namespace == "training")
        #expect(access.certificateAuthority == Data(caPEM.utf8))
        #expect(!access.insecureSkipTLSVerify)
        #expect(try access.credentials().token == "abc123")
        #expect(access.origin.contains("context \"prod\""))
    }

    @Test func aTokenFileWinsOverATokenAndTheClusterSettingsKubectlRefusesAreRefused() throws {
        let dir = folder()
        try write("from-file\n", "\(dir)/token")
        try write(kubeconfig(user: "token: inline\ntokenFile: token", cluster: "proxy-url: http://proxy.internal:3128"), "\(dir)/config")
        let access = try ClusterAccess.fromKubeconfig(files: ["\(dir)/config"])
        #expect(try access.credentials().token == "from-file")
        #expect(access.proxyURL == "http://proxy.internal:3128")

        try write(kubeconfig(user: "token: t").replacingOccurrences(of: "    insecure-skip-tls-verify: true", with: """
                certificate-authority-data: \(Data(caPEM.utf8).base64EncodedString())
                insecure-skip-tls-verify: true
            """), "\(dir)/both")
        let both = #expect(throws: KubeConfigError.self) {
            try ClusterAccess.fromKubeconfig(files: ["\(dir)/both"], options: KubernetesOptions(context: "dev"))
        }
        #expect(both?.description.contains("clusters[dev-cluster]: insecure-skip-tls-verify cannot go with a certificate authority") == true)

        try write(kubeconfig(user: "token: t", cluster: "tls-server-name: api.internal"), "\(dir)/sni")
        let sni = #expect(throws: KubeConfigError.self) { try ClusterAccess.fromKubeconfig(files: ["\(dir)/sni"]) }
        #expect(sni?.description.contains("tls-server-name is not supported") == true)
    }

    @Test func anotherContextAndANamespaceOverride() throws {
        let dir = folder()
        try write(kubeconfig(user: "token: abc123"), "\(dir)/config")
        let access = try ClusterAccess.fromKubeconfig(files: ["\(dir)/config"], options: KubernetesOptions(context: "dev", namespace: "team-a"))
        #expect(access.server == "https://127.0.0.1:8443")
        #expect(access.insecureSkipTLSVerify)
        #expect(access.namespace == "team-a")
        #expect(try access.credentials().token == "dev-token")
    }

    @Test func clientCertificateDataAndFiles() throws {
        let dir = folder()
        let cert = "-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n"
        let key = "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"
        try write(kubeconfig(user: """
            client-certificate-data: \(Data(cert.utf8).base64EncodedString())
            client-key-data: \(Data(key.utf8).base64EncodedString())
            """), "\(dir)/inline")
        let inline = try ClusterAccess.fromKubeconfig(files: ["\(dir)/inline"])
        #expect(try inline.credentials().clientCertificate == Data(cert.utf8))
        #expect(try inline.credentials().clientKey == Data(key.utf8))
        #expect(try inline.credentials().token == nil)

        // Files relative to the kubeconfig's folder, and a CA file.
        try FileManager.default.createDirectory(atPath: "\(dir)/pki", withIntermediateDirectories: true)
        try write(cert, "\(dir)/pki/client.crt")
        try write(key, "\(dir)/pki/client.key")
        try write(caPEM, "\(dir)/pki/ca.crt")
        try write(kubeconfig(user: "client-certificate: pki/client.crt\nclient-key: pki/client.key",
                             cluster: "certificate-authority: pki/ca.crt"), "\(dir)/files")
        let files = try ClusterAccess.fromKubeconfig(files: ["\(dir)/files"])
        #expect(files.certificateAuthority == Data(caPEM.utf8))
        #expect(try files.credentials().clientCertificate == Data(cert.utf8))
        #expect(try files.credentials().clientKey == Data(key.utf8))
    }

    @Test func aMissingCAFileOrHalfAKeyPairIsNamed() throws {
        let dir = folder()
        try write(kubeconfig(user: "token: t", cluster: "certificate-authority: nowhere/ca.crt"), "\(dir)/config")
        let missing = #expect(throws: KubeConfigError.self) { try ClusterAccess.fromKubeconfig(files: ["\(dir)/config"]) }
        #expect(missing?.description.contains("clusters[prod-cluster].certificate-authority: cannot read \(dir)/nowhere/ca.crt") == true)

        try write(kubeconfig(user: "client-certificate-data: \(Data("x".utf8).base64EncodedString())"), "\(dir)/half")
        let half = #expect(throws: KubeConfigError.self) { try ClusterAccess.fromKubeconfig(files: ["\(dir)/half"]) }
        #expect(half?.description.contains("users[prod-user]: a client certificate needs its key") == true)

        let unknown = #expect(throws: KubeConfigError.self) {
            try ClusterAccess.fromKubeconfig(files: ["\(dir)/half"], options: KubernetesOptions(context: "staging"))
        }
        #expect(unknown?.description.contains("has no context \"staging\"; its contexts: dev, prod") == true)
    }

    @Test func anExecPluginRunsOnceUntilItsTokenExpires() throws {
        let dir = folder()
        // Counts its runs; the token it prints says which run made it.
        try write("""
            #!/bin/sh
            n=$(cat "\(dir)/runs" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "\(dir)/runs"
            test "$KUBERNETES_EXEC_INFO" != "" || exit 9
            echo "{\\"apiVersion\\": \\"client.authentication.k8s.io/v1\\", \\"kind\\": \\"ExecCredential\\", \\"status\\": {\\"token\\": \\"run-$n-$CLUSTER\\", \\"expirationTimestamp\\": \\"$EXPIRES\\"}}"
            """, "\(dir)/plugin.sh", executable: true)
        func config(expires: String) throws -> ClusterAccess {
            try write(kubeconfig(user: """
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: ./plugin.sh
                  env:
                  - {name: CLUSTER, value: prod}
                  - {name: EXPIRES, value: "\(expires)"}
                """), "\(dir)/config")
            return try ClusterAccess.fromKubeconfig(files: ["\(dir)/config"])
        }
        let later = Date().addingTimeInterval(3600).formatted(.iso8601)
        let lasting = try config(expires: later)
        #expect(try lasting.credentials().token == "run-1-prod")
        #expect(try lasting.credentials().token == "run-1-prod")  // cached: the plugin did not run again
        #expect(try String(contentsOfFile: "\(dir)/runs", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == "1")

        let expired = try config(expires: Date().addingTimeInterval(-5).formatted(.iso8601))
        #expect(try expired.credentials().token == "run-2-prod")
        #expect(try expired.credentials().token == "run-3-prod")  // expired: runs each time
    }

    @Test func anExecPluginThatAsksForTheClusterGetsIt() throws {
        let dir = folder()
        // Prints the cluster's server from KUBERNETES_EXEC_INFO as its token.
        try write("""
            #!/usr/bin/env python3
            import json, os
            info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
            print(json.dumps({"kind": "ExecCredential", "status": {"token": info["spec"]["cluster"]["server"]}}))
            """, "\(dir)/plugin.py", executable: true)
        try write(kubeconfig(user: "exec:\n  command: ./plugin.py\n  provideClusterInfo: true"), "\(dir)/config")
        #expect(try ClusterAccess.fromKubeconfig(files: ["\(dir)/config"]).credentials().token == "https://10.0.0.1:6443")

        try write(kubeconfig(user: "exec:\n  command: no-such-plugin\n  installHint: 'install it with: apt-get install cloud-auth'"), "\(dir)/missing")
        let missing = #expect(throws: KubeConfigError.self) { try ClusterAccess.fromKubeconfig(files: ["\(dir)/missing"]).credentials() }
        #expect(missing?.description.contains("no-such-plugin is not on PATH. install it with: apt-get install cloud-auth") == true)
    }

    @Test func aFailingExecPluginSaysWhatItPrinted() throws {
        let dir = folder()
        try write("#!/bin/sh\necho 'token expired, run: cloud auth login' >&2\nexit 4\n", "\(dir)/plugin.sh", executable: true)
        try write(kubeconfig(user: "exec:\n  command: \(dir)/plugin.sh"), "\(dir)/config")
        let access = try ClusterAccess.fromKubeconfig(files: ["\(dir)/config"])
        let error = #expect(throws: KubeConfigError.self) { try access.credentials() }
        #expect(error?.description.contains("exited with code 4: token expired, run: cloud auth login") == true)
    }

    @Test func kubeconfigFilesMergeFirstWins() throws {
        let dir = folder()
        try write(kubeconfig(user: "token: from-first"), "\(dir)/a")
        try write("""
            apiVersion: v1
            kind: Config
            current-context: other
            users:
            - {name: prod-user, user: {token: from-second}}
            """, "\(dir)/b")
        let access = try ClusterAccess.resolve(KubernetesOptions(), environment: ["KUBECONFIG": "\(dir)/a:\(dir)/b"])
        #expect(try access.credentials().token == "from-first")
        #expect(access.server == "https://10.0.0.1:6443")
    }

    @Test func inClusterReadsTheServiceAccountAndFollowsItsRotation() throws {
        // Laid out as the kubelet does: token -> ..data/token, and ..data a symlink it swaps to rotate.
        let dir = folder()
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(dir)/..2026_11_26_first", withIntermediateDirectories: true)
        try write("first-token\n", "\(dir)/..2026_11_26_first/token")
        try fm.createSymbolicLink(atPath: "\(dir)/..data", withDestinationPath: "..2026_11_26_first")
        try fm.createSymbolicLink(atPath: "\(dir)/token", withDestinationPath: "..data/token")
        try write(caPEM, "\(dir)/ca.crt")
        try write("trials\n", "\(dir)/namespace")
        let environment = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        let access = try ClusterAccess.inCluster(environment: environment, serviceAccountDirectory: dir)
        #expect(access.server == "https://10.96.0.1:443")
        #expect(access.namespace == "trials")
        #expect(access.certificateAuthority == Data(caPEM.utf8))
        #expect(try access.credentials().token == "first-token")
        // Rotation: a new data folder, and ..data swapped to it in one rename.
        try fm.createDirectory(atPath: "\(dir)/..2026_11_26_second", withIntermediateDirectories: true)
        try write("rotated-token\n", "\(dir)/..2026_11_26_second/token")
        try fm.createSymbolicLink(atPath: "\(dir)/..data_tmp", withDestinationPath: "..2026_11_26_second")
        #expect(rename("\(dir)/..data_tmp", "\(dir)/..data") == 0)
        #expect(try access.credentials().token == "rotated-token")

        let v6 = try ClusterAccess.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"],
                                             serviceAccountDirectory: dir)
        #expect(v6.server == "https://[fd00::1]:443")
        #expect(throws: KubeConfigError.self) { try ClusterAccess.inCluster(environment: [:], serviceAccountDirectory: dir) }
    }

    @Test func noClusterAtAllSaysHowToConfigureOne() throws {
        let error = #expect(throws: KubeConfigError.self) {
            try ClusterAccess.resolve(KubernetesOptions(), environment: ["HOME": folder()])
        }
        #expect(error?.description.contains("Pass --kubeconfig FILE, or set KUBECONFIG") == true)
    }
}
