#!/usr/bin/env python3
"""A Kubernetes API server for tests, on loopback.

It serves the parts of the API that knob uses, with the real API's paths, status codes, `Status`
error bodies, resourceVersions, watch event framing and chunked log streams:

  /api, /api/v1, /apis, /apis/GROUP, /apis/GROUP/VERSION   GET: discovery (APIVersions, APIResourceList,
                                          APIGroupList, APIGroup) of what is served; 404 otherwise
  /api/v1/namespaces/NS/pods              GET (list, labelSelector, watch), POST
  /api/v1/namespaces/NS/pods/NAME         GET, DELETE (gracePeriodSeconds)
  /api/v1/namespaces/NS/pods/NAME/log     GET (container, follow, timestamps, sinceTime, tailLines)
  /api/v1/namespaces/NS/configmaps[/NAME] GET (list, labelSelector, watch), POST; GET, DELETE
  /apis/batch/v1/namespaces/NS/jobs       GET (list, labelSelector, watch), POST
  /apis/batch/v1/namespaces/NS/jobs/NAME  GET, DELETE (propagationPolicy)
  /apis/GROUP/VERSION/namespaces/NS/PLURAL[/NAME[/status]]  custom kinds: GET (list, labelSelector,
                                          watch), POST (fieldValidation); GET, DELETE (propagationPolicy);
                                          status: GET, PUT, PATCH (application/merge-patch+json)

The custom kinds are those whose CRDs a Katib cluster may have: kubeflow.org/v1 PyTorchJob, TFJob,
MPIJob and XGBoostJob, trainer.kubeflow.org/v1alpha1 TrainJob, argoproj.io/v1alpha1 Workflow and
tekton.dev/v1 PipelineRun, each with a status subresource (what a create says of the status is
dropped). `--serve-kinds` chooses which are served (API groups or PLURAL.GROUP, or "none"): a cluster
without kubeflow.org answers its paths and its discovery with 404, as one without those CRDs does.
Deleting one of them deletes its dependents (the pods whose ownerReferences name it) as the garbage
collector does: Background (the default) removes it at once, Foreground keeps it, with a
deletionTimestamp and the `foregroundDeletion` finalizer, until its pods are gone, Orphan leaves them.

TLS with a CA it generates, and client-certificate auth as a real cluster uses (a bearer token
is accepted too). Every built-in object created is validated against the official schemas with
`kubernetes-validate` (strict), and refused with 422 when it does not validate. A custom object is
checked as the API server checks it against its CRD's structural schema: a field of the wrong type
or a missing required one gets 422 (`KIND.GROUP "NAME" is invalid: FIELD: ...`, with the causes in
`details`); an unknown field is pruned with a `Warning` header, or refused with 400 under
`fieldValidation=Strict`. For the training operator's kinds the schema is that of the models its
Python SDK (kubeflow-training) generates from the same Go types as its CRDs, with the CRDs'
required fields; their pod templates are validated as PodTemplateSpecs with kubernetes-validate
(strict, as pods are here, so an unknown field there is a 422). The other custom kinds are checked
only for what their CRDs require (a TrainJob's spec.runtimeRef.name, a spec for the others: Argo's
and Tekton's CRDs preserve unknown fields and leave the rest to their controllers). A PyTorchJob
then passes the training operator's admission webhooks: its defaults (replica types camel-cased,
replicas 1, restartPolicy OnFailure, the `pytorch` container's port `pytorchjob-port` 23456,
cleanPodPolicy None, nprocPerNode auto) and its checks (a container named pytorch in every replica,
an image in every container, one Master, Master and Worker the only replica types), refused with
403 `admission webhook "validator.pytorchjob.training-operator.kubeflow.org" denied the request: ...`.

It plays the kubelet: a pod's containers run their `command` + `args` as local processes (the
image is ignored), each in a process group of its own, so a pod's log and exit code are real. A
container whose image matches `--python-images REGEX` gets a Python environment of its own first
on its PATH (a fresh virtual environment with pip), as a Python image gives each container its own
site-packages: what its command pip-installs stays in that container.

As the kubelet of Kubernetes 1.29 and later does, it runs `spec.initContainers` one after the
other before the containers, the pod Pending meanwhile (the containers waiting with
PodInitializing). A regular init container must exit 0 before the next starts; when it fails, the
pod fails (restartPolicy Never) or it runs again a second later (where the kubelet backs off 10 s,
doubling). A native sidecar (an init container with `restartPolicy: Always`) starts, and what
follows starts beside it; it is started again when it exits while the pod runs. Once all the
containers have ended, the sidecars get SIGTERM, the last started first, then SIGKILL at the end
of the pod's terminationGracePeriodSeconds; only then is the pod Succeeded (every container exited
0) or Failed: how a sidecar ended does not count. Deleting a pod stops its containers, then its
sidecars, within the grace period given. `status.initContainerStatuses`, `containerStatuses` and
the conditions (PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled) have
the real shapes, and the log of any container, init containers included, can be read and followed
(a followed log ends when its container does). Restarts are counted in restartCount and lastState,
but a restarted container's log goes on in the same log.

An `emptyDir` volume is a folder, DIR/pods/UID/volumes/kubernetes.io~empty-dir/NAME, removed with
its pod. A container that mounts emptyDir volumes runs in a mount namespace of its own (`unshare`,
as root; in a user namespace too otherwise) where each volume's folder (or its `subPath`) is bound
at the `mountPath`, read-only if `readOnly`: the pod's containers share it, the host and other pods
do not see it (only the empty mount-point folder is made on the host, if missing). Other volumes
are ignored; containers without emptyDir mounts run as plain processes.

It plays the Job controller too (backoffLimit, activeDeadlineSeconds): a Job completes once its
pod has Succeeded, so after the pod's sidecars have ended.

It plays the training operator for PyTorchJobs: `replicas` pods of each replica type, NAME-master-0,
NAME-worker-0…, from the replica's template, labelled training.kubeflow.org/job-name, replica-type
(lowercase), replica-index, operator-name and job-role=master on the master, owned by the job; each
container gets the operator's env: PYTHONUNBUFFERED=1, MASTER_PORT (see below for which port),
MASTER_ADDR, WORLD_SIZE (replicas × nprocPerNode, 1 for auto), RANK (0 for the master, 1 + index for
a worker), PET_MASTER_PORT, PET_MASTER_ADDR, PET_NODE_RANK, PET_NNODES (and PET_NPROC_PER_NODE).
Conditions and `status.replicaStatuses` are set as the operator sets them: Created, Running,
Restarting, then Succeeded once the master has (without a master, all workers) or Failed once a
replica has failed that its restartPolicy does not restart (Never; ExitCode for exit codes below
128), with the operator's reasons (PyTorchJobSucceeded…) and messages. Where it differs: MASTER_ADDR
is 127.0.0.1, not the master's Service name, and MASTER_PORT (and PET_MASTER_PORT) is a free port
picked for each job, not the master's pytorchjob-port, so that jobs running at once do not clash (the
pods are local processes on one address and no Services are made);
a failed pod that its restartPolicy restarts is deleted and made again, as the operator does when the
kubelet reports it Failed (the kubelet here does not restart containers in place); there are no
elastic, gang-scheduling or suspend features. TFJob, MPIJob, XGBoostJob, TrainJob and PipelineRun are
stored, validated and watched, but nothing runs them.

It plays Argo's Workflow controller for `container` and `steps` templates: from the entrypoint, a pod
per container template (named as Argo names them: the workflow's name for a root pod node, else
WORKFLOW-TEMPLATE-FNV32A(node name); labelled workflows.argoproj.io/workflow and .../completed; the
template's container as `main`, without Argo's init and wait containers), the step groups one after
the other and the steps of a group beside each other, `status.nodes` (Pod, Steps and StepGroup nodes
with their ids, phases, children, exit codes and messages such as "Error (exit code 1)" and "child
'ID' failed"), `status.phase` Running, then Succeeded or Failed with the failing node's message, and
"invalid spec: ..." for what it cannot run (an undefined entrypoint, other kinds of template).
Parameters, artifacts, DAGs and retries are not played.

Faults are injected with `--faults JSON` (a list of rules, see `Faults`).

    kube_apiserver.py --dir DIR [--faults JSON] [--token TOKEN] [--python-images REGEX] [--serve-kinds GROUPS]

writes DIR/ca.crt, DIR/client.crt, DIR/client.key and DIR/kubeconfig, then prints
`listening on https://127.0.0.1:PORT` and serves until killed. DIR/created.jsonl records every
object created, with its validation result.
"""

import argparse
import base64
import datetime
import errno
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
from kubernetes_validate import utils as kv_utils

# ---------------------------------------------------------------------------------------------
# Certificates


def make_certificates(directory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common, org=None):
        parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
        if org:
            parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(parts)

    def pem_key(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (x509.CertificateBuilder().subject_name(name("kube-apiserver-test-ca")).issuer_name(name("kube-apiserver-test-ca"))
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))

    def issue(common, org, server):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(common, org)).issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                                  critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), pem_key(key)

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    server_cert, server_key = issue("kube-apiserver", None, True)
    client_cert, client_key = issue("knob-test", "system:masters", False)
    files = {"ca.crt": ca_pem, "server.crt": server_cert, "server.key": server_key, "client.crt": client_cert, "client.key": client_key}
    for file, data in files.items():
        with open(os.path.join(directory, file), "wb") as f:
            f.write(data)
    return files


def write_kubeconfig(directory, port, files, namespace="default"):
    b64 = lambda data: base64.b64encode(data).decode()
    text = f"""apiVersion: v1
kind: Config
current-context: test
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority-data: {b64(files["ca.crt"])}
users:
- name: test-admin
  user:
    client-certificate-data: {b64(files["client.crt"])}
    client-key-data: {b64(files["client.key"])}
contexts:
- name: test
  context:
    cluster: test
    user: test-admin
    namespace: {namespace}
"""
    with open(os.path.join(directory, "kubeconfig"), "w") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------
# Time


def rfc3339(ns=None):
    ns = time.time_ns() if ns is None else ns
    return datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339nano(ns):
    seconds = datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return f"{seconds}.{fraction}Z" if fraction else f"{seconds}Z"


def parse_rfc3339_seconds(text):
    text = re.sub(r"\.\d+", "", text).replace("Z", "+00:00")
    return int(datetime.datetime.fromisoformat(text).timestamp())


# ---------------------------------------------------------------------------------------------
# Faults


class Faults:
    """Rules, each applied `times` times (-1: always):

    {"method": "POST", "path": "/pods$", "status": 429, "retryAfter": 1, "times": 2}
        answer with that status (429, 500, 503, 401, 403, 422…) instead of serving the request
    {"method": "POST", "path": "/pods$", "status": 500, "afterServing": true, "times": 1}
        serve the request, then answer 500 anyway (a retried create then meets 409)
    {"watchGone": true, "times": 1}             a watch gets an ERROR event with 410 Expired
    {"logDropAfterLines": 2, "times": 1}        a log stream is cut after 2 lines (only followed ones
                                                with "follow": true, only whole reads with false)
    {"imagePull": "registry.invalid"}           images containing this never pull (ImagePullBackOff),
                                                init containers' too: the pod then stays Pending there
    {"imagePull": true, "path": "NAME-RE"}      nor do the images of pods whose name matches
    {"unschedulable": true, "path": "NAME-RE"}  pods whose name matches stay Unschedulable
    {"oomAfterLines": 2, "path": "NAME-RE"}     the container is killed as OOMKilled after 2 lines
    {"deleteAfterLines": 2, "path": "NAME-RE"}  the pod is deleted (evicted) after 2 lines
    The last two count the lines of each of the pod's containers (not its init containers), or
    only those of the container a rule names with "container": "NAME".
    """

    def __init__(self, rules):
        self.rules = rules
        self.lock = threading.Lock()
        self.fired = []

    def take(self, predicate):
        with self.lock:
            for rule in self.rules:
                if rule.get("times", -1) == 0 or not predicate(rule):
                    continue
                if rule.get("times", -1) > 0:
                    rule["times"] -= 1
                self.fired.append(rule)
                return rule
        return None

    def peek(self, predicate):
        with self.lock:
            return next((r for r in self.rules if r.get("times", -1) != 0 and predicate(r)), None)


# ---------------------------------------------------------------------------------------------
# The cluster's state


class APIError(Exception):
    def __init__(self, code, reason, message, retry_after=None, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.retry_after = code, reason, message, retry_after
        self.details = details

    def status(self):
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                  "reason": self.reason, "code": self.code}
        if self.details:
            status["details"] = self.details
        return status


class Resource:
    """A kind this server serves: where (group, version, plural) and what (kind, singular, subresources)."""

    def __init__(self, group, version, plural, kind, short_names=(), status=False, log=False, webhook=None, categories=()):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.singular = kind.lower()
        self.short_names = list(short_names)
        self.categories = list(categories)
        self.status, self.log = status, log
        self.webhook = webhook  # the name of the validating admission webhook that guards it, if any

    @property
    def id(self):
        # How the store keys it: the plural alone for the built-in kinds, PLURAL.GROUP for custom ones.
        return self.plural if self.group in ("", "batch") else f"{self.plural}.{self.group}"

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self):
        return self.kind + "List"

    @property
    def custom(self):
        return self.group not in ("", "batch")


BUILTIN = [
    Resource("", "v1", "pods", "Pod", ["po"], log=True),
    Resource("", "v1", "configmaps", "ConfigMap", ["cm"]),
    Resource("batch", "v1", "jobs", "Job"),
]
# The custom kinds a cluster may have (their CRDs installed), each served unless --serve-kinds leaves it out.
CUSTOM = [
    Resource("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob", status=True, webhook="validator.pytorchjob.training-operator.kubeflow.org"),
    Resource("kubeflow.org", "v1", "tfjobs", "TFJob", status=True),
    Resource("kubeflow.org", "v1", "mpijobs", "MPIJob", status=True),
    Resource("kubeflow.org", "v1", "xgboostjobs", "XGBoostJob", status=True),
    Resource("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob", status=True),
    Resource("argoproj.io", "v1alpha1", "workflows", "Workflow", ["wf"], status=True),
    Resource("tekton.dev", "v1", "pipelineruns", "PipelineRun", ["pr", "prs"], status=True, categories=["tekton", "tekton-pipelines"]),
]
DEFAULT_SERVED = ",".join(sorted({r.group for r in CUSTOM}))


def served_resources(serve_kinds):
    """The built-in kinds, and the custom kinds named by `serve_kinds`: a comma-separated list of API groups
    (kubeflow.org) or PLURAL.GROUP (pytorchjobs.kubeflow.org); "" or "none" for none."""
    wanted = {w.strip() for w in (serve_kinds or "").split(",") if w.strip() and w.strip() != "none"}
    known = {r.group for r in CUSTOM} | {r.id for r in CUSTOM}
    unknown = wanted - known
    if unknown:
        raise SystemExit(f"--serve-kinds: unknown kinds {sorted(unknown)}; known: {sorted(known)}")
    return BUILTIN + [r for r in CUSTOM if r.group in wanted or r.id in wanted]


RESOURCES = {r.id: r for r in BUILTIN}  # what this cluster serves, by id; set by main()
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# Run by `sh` in a container's own mount namespace: binds each volume's folder (SOURCE MOUNTPATH rw|ro,
# as many as there are, then --) and execs the container's command in its workingDir.
MOUNT_VOLUMES = """working_dir=$1; shift
while [ "$1" != -- ]; do
    mkdir -p "$2" && mount --bind "$1" "$2" || exit 1
    if [ "$3" = ro ]; then mount -o remount,bind,ro "$2" || exit 1; fi
    shift 3
done
shift
if [ -n "$working_dir" ] && [ -d "$working_dir" ]; then cd "$working_dir" || exit 1; fi
exec "$@"
"""


# ---------------------------------------------------------------------------------------------
# Custom kinds: schema checks, as the API server does with a CRD's structural schema, and admission


def json_type(value):
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "object")


# The training operator's kinds are checked field by field against the models its Python SDK generates from
# the same Go types as its CRDs (kubeflow-training: each model's attribute_map and openapi_types); what the
# CRDs require is listed here, since the SDK's models mark more fields required than the CRDs do.
TRAINING_SPECS = {"pytorchjobs.kubeflow.org": "KubeflowOrgV1PyTorchJobSpec", "tfjobs.kubeflow.org": "KubeflowOrgV1TFJobSpec",
                  "mpijobs.kubeflow.org": "KubeflowOrgV1MPIJobSpec", "xgboostjobs.kubeflow.org": "KubeflowOrgV1XGBoostJobSpec"}
CRD_REQUIRED = {"KubeflowOrgV1PyTorchJobSpec": ["pytorchReplicaSpecs"], "KubeflowOrgV1TFJobSpec": ["tfReplicaSpecs"],
                "KubeflowOrgV1MPIJobSpec": ["mpiReplicaSpecs"], "KubeflowOrgV1XGBoostJobSpec": ["xgbReplicaSpecs"],
                "KubeflowOrgV1JobCondition": ["status", "type"]}
PRIMITIVES = {"str": ("string", str), "int": ("integer", int), "bool": ("boolean", bool), "float": ("number", (int, float)),
              "datetime": ("string", str), "date": ("string", str)}


class SchemaCheck:
    """Walks an object against a model's field types: type errors and missing required fields (what the API
    server answers 422 for), and unknown fields (pruned, or refused under fieldValidation=Strict). A pod
    template is validated as a PodTemplateSpec with kubernetes-validate (strict, as this server's pods are)."""

    def __init__(self, schema_version):
        self.schema_version = schema_version
        self.errors = []  # (field, reason, message)
        self.unknown = []  # (field, parent dict, key)

    @staticmethod
    def model(name):
        import kubeflow.training.models as training
        import kubernetes.client.models as core
        return getattr(training, name, None) or getattr(core, name, None)

    def type_error(self, path, value, expected):
        given = json_type(value)
        self.errors.append((path, "FieldValueTypeInvalid",
                            f"{path}: Invalid value: \"{given}\": {path} in body must be of type {expected}: \"{given}\""))

    def walk(self, value, type_name, path):
        if type_name in PRIMITIVES:
            expected, kind = PRIMITIVES[type_name]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                self.type_error(path, value, expected)
            return
        if type_name == "object":
            return
        if type_name.startswith("dict("):
            inner = type_name[len("dict(str, "):-1]
            if not isinstance(value, dict):
                return self.type_error(path, value, "object")
            for key, item in value.items():
                self.walk(item, inner, f"{path}.{key}")
            return
        if type_name.startswith("list["):
            inner = type_name[len("list["):-1]
            if not isinstance(value, list):
                return self.type_error(path, value, "array")
            for index, item in enumerate(value):
                self.walk(item, inner, f"{path}[{index}]")
            return
        if not isinstance(value, dict):
            return self.type_error(path, value, "object")
        if type_name == "V1PodTemplateSpec":
            return self.pod_template(value, path)
        model = self.model(type_name)
        if model is None:
            return
        fields = {json_name: model.openapi_types[attr] for attr, json_name in model.attribute_map.items()}
        for key in [k for k, item in value.items() if item is None and k in fields]:
            del value[key]  # a null where the schema does not allow one is pruned, as the API server does
        for key, item in value.items():
            if key not in fields:
                self.unknown.append((f"{path}.{key}", value, key))
            else:
                self.walk(item, fields[key], f"{path}.{key}")
        for key in CRD_REQUIRED.get(type_name, []):
            if value.get(key) is None:
                self.errors.append((f"{path}.{key}", "FieldValueRequired", f"{path}.{key}: Required value"))

    def pod_template(self, template, path):
        wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "template"}, "template": template}
        try:
            kubernetes_validate.validate(wrapper, self.schema_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            field = ".".join([path] + [str(p) for p in list(error.path)[1:]])
            self.errors.append((field, "FieldValueInvalid", f"{field}: Invalid value: {error.message}"))


def check_required(obj, paths):
    """The fields (dotted paths, objects on the way) a kind's CRD requires: what is missing or not an object."""
    errors = []
    for dotted in paths:
        current, walked = obj, []
        for part in dotted.split("."):
            walked.append(part)
            field = ".".join(walked)
            if not isinstance(current, dict) or current.get(part) is None:
                errors.append((field, "FieldValueRequired", f"{field}: Required value"))
                break
            current = current[part]
    return errors


def field_path_key(path, key):
    # As apimachinery's field.Path prints a map key or a list index.
    return f"{path}[{key}]"


def pytorchjob_defaults(job):
    """The training operator's defaulting webhook: replica type names camel-cased, 1 replica, restartPolicy
    OnFailure, the pytorch container's port pytorchjob-port (23456), cleanPodPolicy None, nprocPerNode auto."""
    spec = job.setdefault("spec", {})
    replicas = spec.get("pytorchReplicaSpecs")
    if isinstance(replicas, dict):
        for name in list(replicas):
            for proper in ("Master", "Worker"):
                if name.lower() == proper.lower() and name != proper:
                    replicas[proper] = replicas.pop(name)
        for replica in replicas.values():
            if not isinstance(replica, dict):
                continue
            replica.setdefault("replicas", 1)
            replica.setdefault("restartPolicy", "OnFailure")
            containers = replica.get("template", {}).get("spec", {}).get("containers", [])
            for container in containers:
                if container.get("name") == "pytorch":
                    ports = container.setdefault("ports", [])
                    if not any(p.get("name") == "pytorchjob-port" for p in ports):
                        ports.append({"name": "pytorchjob-port", "containerPort": 23456, "protocol": "TCP"})
                    break
    spec.setdefault("runPolicy", {}).setdefault("cleanPodPolicy", "None")
    if spec.get("elasticPolicy") is None:
        spec.setdefault("nprocPerNode", "auto")


def pytorchjob_webhook(job):
    """The training operator's validating webhook for a new PyTorchJob: its errors, as field.ErrorList prints them."""
    errors = []
    name = job.get("metadata", {}).get("name", "")
    if name and not re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", name) or len(name) > 63:
        errors.append(f"metadata.name: Invalid value: \"{name}\": should match: a lowercase RFC 1035 label must consist of lower case "
                      "alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character")
    replicas = job.get("spec", {}).get("pytorchReplicaSpecs")
    base = "spec.pytorchReplicaSpecs"
    if replicas is None:
        errors.append(f"{base}: Required value: must be required")
    for rtype, replica in (replicas or {}).items():
        role = field_path_key(base, rtype)
        containers_path = f"{role}.template.spec.containers"
        if rtype not in ("Master", "Worker"):
            errors.append(f"{role}: Unsupported value: \"{rtype}\": supported values: \"Master\", \"Worker\"")
        containers = (replica or {}).get("template", {}).get("spec", {}).get("containers") or []
        if not containers:
            errors.append(f"{containers_path}: Required value: must be specified")
        for index, container in enumerate(containers):
            if not container.get("image"):
                errors.append(f"{containers_path}[{index}].image: Required value: must be required")
        if not any(c.get("name") == "pytorch" for c in containers):
            errors.append(f"{containers_path}: Required value: must have at least one container with name pytorch")
        count = (replica or {}).get("replicas")
        if rtype == "Master" and count != 1:
            errors.append(f"{role}.replicas: Forbidden: must be 1")
        elif rtype != "Master" and count is not None and count < 1:
            errors.append(f"{role}.replicas: Forbidden: must be at least 1")
    return errors


class Cluster:
    def __init__(self, directory, faults, schema_version, python_images=None):
        self.directory = directory
        self.python_images = re.compile(python_images) if python_images else None
        self.faults = faults
        self.schema_version = schema_version
        self.cond = threading.Condition()
        self.rv = 100
        self.objects = {}  # (resource, namespace, name) -> object
        self.events = []  # (rv, resource, namespace, type, object)
        self.logs = {}  # (namespace, pod, container) -> [(ns_time, bytes)]
        self.processes = {}  # (namespace, pod) -> [Popen]

    # -- bookkeeping (call with self.cond held)

    def bump(self, resource, kind, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        namespace = obj["metadata"]["namespace"]
        self.events.append((self.rv, resource, namespace, kind, json.loads(json.dumps(obj))))
        del self.events[:-2000]
        self.cond.notify_all()

    def record(self, obj, valid, message):
        with open(os.path.join(self.directory, "created.jsonl"), "a") as f:
            f.write(json.dumps({"object": obj, "valid": valid, "message": message}) + "\n")

    # -- API operations

    def create(self, resource, namespace, obj, field_validation=None, warnings=None):
        rtype = RESOURCES[resource]
        api_version, kind = rtype.api_version, rtype.kind
        # As the real server does, the path gives the type when the body leaves it out.
        if not isinstance(obj, dict):
            raise APIError(400, "BadRequest", "the body of the request was in an unknown format: expected a JSON object")
        obj.setdefault("kind", kind)
        obj.setdefault("apiVersion", api_version)
        if obj["kind"] != kind or obj["apiVersion"] != api_version:
            raise APIError(400, "BadRequest", f"the body of the request was in an unknown format: expected {api_version} {kind}")
        if rtype.custom:
            self.admit_custom(rtype, obj, field_validation, warnings if warnings is not None else [])
        else:
            try:
                kubernetes_validate.validate(obj, self.schema_version, strict=True)
                self.record(obj, True, "")
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                message = f"{kind} \"{obj.get('metadata', {}).get('name', '')}\" is invalid: {path}: {error.message}"
                self.record(obj, False, message)
                raise APIError(422, "Invalid", message)
        metadata = obj.setdefault("metadata", {})
        name = metadata.get("name", "")
        if not name and metadata.get("generateName"):
            name = metadata["generateName"] + uuid.uuid4().hex[:5]
            metadata["name"] = name
        if not NAME_RE.match(name or ""):
            raise APIError(422, "Invalid", f"{kind} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters")
        if metadata.setdefault("namespace", namespace) != namespace:
            raise APIError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        with self.cond:
            if (resource, namespace, name) in self.objects:
                raise APIError(409, "AlreadyExists", f"{resource} \"{name}\" already exists")
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = rfc3339()
            metadata["generation"] = 1
            if resource == "pods":
                obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
            elif resource == "jobs":
                obj["status"] = {}
            elif rtype.status:
                # With a status subresource, what a create says of the status is dropped.
                obj.pop("status", None)
            self.objects[(resource, namespace, name)] = obj
            if resource == "pods":
                # A new pod of an old name starts with an empty log.
                for container in obj.get("spec", {}).get("initContainers", []) + obj.get("spec", {}).get("containers", []):
                    self.logs.pop((namespace, name, container.get("name")), None)
            self.bump(resource, "ADDED", obj)
            created = json.loads(json.dumps(obj))
        controller = {"pods": self.kubelet, "jobs": self.job_controller, "pytorchjobs.kubeflow.org": self.pytorchjob_controller,
                      "workflows.argoproj.io": self.workflow_controller}.get(resource)
        if controller:
            threading.Thread(target=controller, args=(namespace, name), daemon=True).start()
        return created

    def admit_custom(self, rtype, obj, field_validation, warnings):
        """What the API server does with a custom object before storing it: its CRD's schema (422 naming the
        fields; unknown fields pruned with a warning, or refused under fieldValidation=Strict), then the
        admission webhooks the kind's operator installs (the training operator's defaults and checks)."""
        name = obj.get("metadata", {}).get("name", "") if isinstance(obj.get("metadata"), dict) else ""
        check = SchemaCheck(self.schema_version)
        if rtype.id in TRAINING_SPECS:
            if "spec" in obj:
                check.walk(obj["spec"], TRAINING_SPECS[rtype.id], "spec")
            known = {"apiVersion", "kind", "metadata", "spec", "status"}
            check.unknown += [(key, obj, key) for key in obj if key not in known]
        elif rtype.id == "trainjobs.trainer.kubeflow.org":
            check.errors += check_required(obj, ["spec.runtimeRef.name"])
        else:  # Argo's Workflow, Tekton's PipelineRun
            check.errors += check_required(obj, ["spec"])
        if check.unknown and not check.errors and field_validation == "Strict":
            message = f"{rtype.kind} in version \"{rtype.version}\" cannot be handled as a {rtype.kind}: strict decoding error: " + \
                ", ".join(f"unknown field \"{f}\"" for f, _, _ in check.unknown)
            self.record(obj, False, message)
            raise APIError(400, "BadRequest", message)
        if check.errors:
            messages = [m for _, _, m in check.errors]
            text = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
            message = f"{rtype.kind}.{rtype.group} \"{name}\" is invalid: {text}"
            self.record(obj, False, message)
            raise APIError(422, "Invalid", message, details={
                "name": name, "group": rtype.group, "kind": rtype.kind,
                "causes": [{"reason": reason, "message": m, "field": f} for f, reason, m in check.errors]})
        for field, parent, key in check.unknown:
            parent.pop(key, None)
            if field_validation != "Ignore":
                warnings.append(f"unknown field \"{field}\"")
        if rtype.id == "pytorchjobs.kubeflow.org":
            pytorchjob_defaults(obj)
            denied = pytorchjob_webhook(obj)
            if denied:
                text = denied[0] if len(denied) == 1 else "[" + ", ".join(denied) + "]"
                message = f"admission webhook \"{rtype.webhook}\" denied the request: {text}"
                self.record(obj, False, message)
                raise APIError(403, "Forbidden", message)
        self.record(obj, True, "")

    def get(self, resource, namespace, name):
        with self.cond:
            obj = self.objects.get((resource, namespace, name))
            if obj is None:
                raise APIError(404, "NotFound", f"{resource} \"{name}\" not found")
            return json.loads(json.dumps(obj))

    def list(self, resource, namespace, selector):
        with self.cond:
            items = [json.loads(json.dumps(o)) for (r, ns, _), o in sorted(self.objects.items())
                     if r == resource and ns == namespace and matches(selector, o)]
            return items, str(self.rv)

    def delete(self, resource, namespace, name, grace, propagation):
        rtype = RESOURCES[resource]
        if propagation not in ("Foreground", "Background", "Orphan"):
            raise APIError(422, "Invalid", f"DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: "
                           f"\"{propagation}\": supported values: \"Foreground\", \"Background\", \"Orphan\"")
        with self.cond:
            obj = self.objects.get((resource, namespace, name))
            if obj is None:
                raise APIError(404, "NotFound", f"{resource} \"{name}\" not found")
            if resource == "configmaps":
                self.objects.pop((resource, namespace, name))
                self.bump(resource, "DELETED", obj)
                return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "kind": resource, "uid": obj["metadata"]["uid"]}}
            first = "deletionTimestamp" not in obj["metadata"]
            if first and (resource in ("pods", "jobs") or propagation == "Foreground"):
                obj["metadata"]["deletionTimestamp"] = rfc3339()
                obj["metadata"]["deletionGracePeriodSeconds"] = grace if resource == "pods" else 0
                if propagation == "Foreground" and resource != "pods":
                    # The garbage collector keeps the owner, with this finalizer, until its dependents are gone.
                    finalizers = obj["metadata"].setdefault("finalizers", [])
                    if "foregroundDeletion" not in finalizers:
                        finalizers.append("foregroundDeletion")
                self.bump(resource, "MODIFIED", obj)
            answer = json.loads(json.dumps(obj))
        if not first:
            return answer
        if resource == "pods":
            threading.Thread(target=self.kill_pod, args=(namespace, name, grace), daemon=True).start()
        elif resource == "jobs":
            threading.Thread(target=self.delete_job, args=(namespace, name, grace, propagation), daemon=True).start()
        else:
            if propagation != "Foreground":
                self.remove(resource, namespace, name)
            threading.Thread(target=self.collect_dependents, args=(resource, namespace, name, obj["metadata"]["uid"], propagation),
                             daemon=True).start()
        return answer

    def dependents(self, namespace, uid):
        """The pods (the only kind here that has owners) whose ownerReferences name the object of this uid."""
        with self.cond:
            return [o for (r, ns, _), o in self.objects.items()
                    if r == "pods" and ns == namespace and any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences", []))]

    def collect_dependents(self, resource, namespace, name, uid, propagation):
        """The garbage collector's part in deleting an owner: its dependents are deleted (Background, Foreground:
        then the owner goes once they are gone) or orphaned (their ownerReferences to it removed)."""
        for pod in self.dependents(namespace, uid):
            pod_name = pod["metadata"]["name"]
            if propagation == "Orphan":
                self.update("pods", namespace, pod_name, lambda p: p["metadata"].update(
                    ownerReferences=[ref for ref in p["metadata"]["ownerReferences"] if ref.get("uid") != uid]))
                continue
            try:
                self.delete("pods", namespace, pod_name, pod["spec"].get("terminationGracePeriodSeconds", 30), "Background")
            except APIError:
                pass
        if propagation == "Foreground":
            with self.cond:
                while self.dependents(namespace, uid):
                    self.cond.wait(0.2)
            self.remove(resource, namespace, name)

    def remove(self, resource, namespace, name):
        with self.cond:
            obj = self.objects.pop((resource, namespace, name), None)
            if obj is not None:
                self.bump(resource, "DELETED", obj)
        if obj is not None and resource == "pods":
            # The pod's emptyDir volumes go with it.
            shutil.rmtree(os.path.join(self.directory, "pods", obj["metadata"]["uid"]), ignore_errors=True)

    def update_status(self, resource, namespace, name, body, merge):
        """The status subresource: PUT replaces the status (the rest of the body is ignored), PATCH merges into it
        (JSON merge patch). A resourceVersion in the body must be the object's current one."""
        if not isinstance(body, dict):
            raise APIError(400, "BadRequest", "the body of the request was in an unknown format: expected a JSON object")
        with self.cond:
            obj = self.objects.get((resource, namespace, name))
            if obj is None:
                raise APIError(404, "NotFound", f"{resource} \"{name}\" not found")
            given = (body.get("metadata") or {}).get("resourceVersion")
            if given and given != obj["metadata"]["resourceVersion"]:
                raise APIError(409, "Conflict", f"Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; "
                               "please apply your changes to the latest version and try again")
            if merge:
                obj["status"] = merge_patch(obj.get("status", {}), body.get("status", {}))
            else:
                obj["status"] = body.get("status", {})
            self.bump(resource, "MODIFIED", obj)
            return json.loads(json.dumps(obj))

    def update(self, resource, namespace, name, change):
        with self.cond:
            obj = self.objects.get((resource, namespace, name))
            if obj is None:
                return None
            change(obj)
            self.bump(resource, "MODIFIED", obj)
            return json.loads(json.dumps(obj))

    # -- the kubelet

    def kubelet(self, namespace, name):
        """Runs one pod as the kubelet does: its init containers one after the other (a native sidecar,
        one with `restartPolicy: Always`, keeps running beside what follows it), then its containers.
        Once every container has ended, the sidecars are stopped, the last started first, and only
        then does the pod become Succeeded or Failed."""
        time.sleep(0.05)
        try:
            pod = self.get("pods", namespace, name)
        except APIError:
            return
        spec = pod["spec"]
        uid = pod["metadata"]["uid"]
        inits = spec.get("initContainers", [])
        containers = spec["containers"]
        key = (namespace, name)
        restart_policy = spec.get("restartPolicy", "Always")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        scheduled_at = rfc3339()

        if self.faults.peek(lambda r: r.get("unschedulable") and re.search(r.get("path", ""), name)):
            self.update("pods", namespace, name, lambda p: p["status"].update(conditions=[{
                "type": "PodScheduled", "status": "False", "lastTransitionTime": scheduled_at, "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."}]))
            return

        def is_sidecar(container):
            return container in inits and container.get("restartPolicy") == "Always"

        def pull_fails(container):
            def rule_fails(rule):
                if not rule.get("imagePull"):
                    return False
                if isinstance(rule["imagePull"], str):
                    return rule["imagePull"] in container.get("image", "")
                return re.search(rule.get("path", ""), name) is not None
            return self.faults.peek(rule_fails) is not None

        # What the kubelet knows of the pod; `publish` writes it to the pod's status. Written by this
        # thread only; `results` (container name -> how its last run ended) is filled by the watchers.
        first_wait = "PodInitializing" if inits else "ContainerCreating"
        statuses = {c["name"]: {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
                                "started": False, "state": {"waiting": {"reason": first_wait}}} for c in inits + containers}
        pod_state = {"phase": "Pending", "initialized": not inits, "stopping": False}
        results = {}
        current = {}  # container name -> its process, once started
        transitions = {}  # condition type -> (status, lastTransitionTime)

        def condition(kind, ok, reason=None, message=None):
            status = "True" if ok else "False"
            if transitions.get(kind, (None,))[0] != status:
                transitions[kind] = (status, rfc3339())
            made = {"type": kind, "status": status, "lastTransitionTime": transitions[kind][1]}
            if reason:
                made["reason"] = reason
            if message:
                made["message"] = message
            return made

        def conditions():
            terminal = pod_state["phase"] in ("Succeeded", "Failed")
            incomplete = [c["name"] for c in inits if not statuses[c["name"]]["ready"]]
            unready = [c["name"] for c in inits + containers if (is_sidecar(c) or c in containers) and not statuses[c["name"]]["ready"]]
            made = [condition("PodReadyToStartContainers", not terminal)]
            if pod_state["initialized"]:
                made.append(condition("Initialized", True, "PodCompleted" if terminal else None))
            else:
                made.append(condition("Initialized", False, "ContainersNotInitialized",
                                      f"containers with incomplete status: [{' '.join(incomplete)}]"))
            for kind in ("Ready", "ContainersReady"):
                if terminal:
                    made.append(condition(kind, False, "PodCompleted"))
                elif unready:
                    made.append(condition(kind, False, "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"))
                else:
                    made.append(condition(kind, True))
            made.append(condition("PodScheduled", True))
            return made

        def publish():
            made = conditions()
            snapshot = json.loads(json.dumps(statuses))

            def change(p):
                status = p["status"]
                status.update(phase=pod_state["phase"], conditions=made, startTime=scheduled_at, hostIP="127.0.0.1", podIP="127.0.0.1")
                if inits:
                    status["initContainerStatuses"] = [snapshot[c["name"]] for c in inits]
                status["containerStatuses"] = [snapshot[c["name"]] for c in containers]
            self.update("pods", namespace, name, change)

        def deleting():
            obj = self.objects.get(("pods", namespace, name))
            return obj is None or obj["metadata"]["uid"] != uid or "deletionTimestamp" in obj["metadata"]

        volumes = self.pod_volumes(pod)
        python_paths = {}

        def launch(container):
            """Starts a container: its process, None when it could not start (its log says why), or
            False when the pod is being deleted (then nothing more starts)."""
            cname = container["name"]
            if self.python_images and self.python_images.search(container.get("image", "")) and cname not in python_paths:
                python_paths[cname] = self.python_environment(namespace, name, cname)
            with self.cond:
                if deleting():
                    return False
                results.pop(cname, None)
                try:
                    proc = self.start_process(container, volumes, python_paths.get(cname))
                except OSError as error:
                    self.append_log(namespace, name, cname, f"exec: {error}".encode())
                    results[cname] = (128, "StartError", rfc3339(), "failed to create containerd task: exec: not found")
                    return None
                self.processes.setdefault(key, []).append((cname, is_sidecar(container), proc))
                current[cname] = proc
            threading.Thread(target=self.watch_container, args=(namespace, name, container, container in inits, proc, results),
                             daemon=True).start()
            return proc

        def mark_started(container):
            status = statuses[container["name"]]
            status["containerID"] = f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}"
            status["state"] = {"running": {"startedAt": rfc3339()}}
            status["started"] = True
            # A regular init container is ready once it has completed, not while it runs.
            status["ready"] = container not in inits or is_sidecar(container)
            with self.cond:
                if container["name"] in results:  # it could not start
                    record_exit(container)

        def record_exit(container):
            code, reason, finished, message = results[container["name"]]
            status = statuses[container["name"]]
            terminated = {"exitCode": code, "reason": reason, "startedAt": status["state"].get("running", {}).get("startedAt", finished),
                          "finishedAt": finished, "containerID": status.get("containerID", "")}
            if message:
                terminated["message"] = message
            status["state"] = {"terminated": terminated}
            status["started"] = False
            status["ready"] = container in inits and not is_sidecar(container) and code == 0

        def running(container):
            return "running" in statuses[container["name"]]["state"]

        def restart_sidecar(container):
            # As the kubelet restarts an exited sidecar while the pod runs (it waits 10 s, doubling; a second here).
            status = statuses[container["name"]]
            with self.cond:
                record_exit(container)
            status["lastState"] = status["state"]
            status["restartCount"] += 1
            status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                           f"back-off 10s restarting failed container={container['name']} pod={name}_{namespace}({uid})"}}
            publish()
            time.sleep(1)
            if launch(container):
                mark_started(container)
            publish()

        def wait_for(done, timeout=None, until_deleted=True):
            """Waits for done() (called with the lock held): True once it holds; False when the pod is being
            deleted (with until_deleted) or the timeout passed. Restarts sidecars that exit meanwhile."""
            deadline = None if timeout is None else time.time() + timeout
            while True:
                with self.cond:
                    if done():
                        return True
                    if (until_deleted and deleting()) or (deadline is not None and time.time() >= deadline):
                        return False
                    exited = [] if pod_state["stopping"] or deleting() else \
                        [c for c in inits if is_sidecar(c) and running(c) and c["name"] in results]
                    if not exited:
                        self.cond.wait(0.5 if deadline is None else min(0.5, max(0.01, deadline - time.time())))
                        continue
                for container in exited:
                    restart_sidecar(container)

        def back_off_pull(container):
            image = container.get("image", "")
            statuses[container["name"]]["state"] = {"waiting": {"reason": "ImagePullBackOff", "message": f"Back-off pulling image \"{image}\""}}

        if inits:
            publish()
        init_failed = False
        stuck = False
        for container in inits:
            if pull_fails(container):
                back_off_pull(container)
                publish()
                stuck = True
                break
            while True:
                proc = launch(container)
                if proc is False:
                    stuck = True
                    break
                mark_started(container)
                publish()
                if is_sidecar(container):
                    if not running(container):
                        # A sidecar that cannot start is tried again and again: the pod stays Pending.
                        status = statuses[container["name"]]
                        status["lastState"] = status["state"]
                        status["restartCount"] += 1
                        status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                                       f"back-off 10s restarting failed container={container['name']} pod={name}_{namespace}({uid})"}}
                        publish()
                        stuck = True
                    break
                if not wait_for(lambda: container["name"] in results):
                    stuck = True
                    break
                with self.cond:
                    record_exit(container)
                if statuses[container["name"]]["state"]["terminated"]["exitCode"] == 0:
                    publish()
                    break
                if restart_policy == "Never":
                    init_failed = True
                    break
                # The kubelet runs a failed init container again (restartPolicy OnFailure or Always).
                status = statuses[container["name"]]
                status["lastState"] = status["state"]
                status["restartCount"] += 1
                status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                               f"back-off 10s restarting failed container={container['name']} pod={name}_{namespace}({uid})"}}
                publish()
                if wait_for(lambda: False, timeout=1) is False and deleting():
                    stuck = True
                    break
            if stuck or init_failed:
                break

        if not stuck and not init_failed:
            pod_state["initialized"] = True
            failing = [c for c in containers if pull_fails(c)]
            if failing:
                for container in failing:
                    back_off_pull(container)
                for container in containers:
                    if container not in failing:
                        statuses[container["name"]]["state"] = {"waiting": {"reason": "ContainerCreating"}}
                publish()
                stuck = True
            else:
                for container in containers:
                    if launch(container) is False:
                        stuck = True
                        break
                    mark_started(container)
                if not stuck:
                    pod_state["phase"] = "Running"
                    publish()
                    # Each container's end is reported as it comes; the pod runs on until the last.
                    while any(running(c) for c in containers):
                        wait_for(lambda: any(running(c) and c["name"] in results for c in containers), until_deleted=False)
                        with self.cond:
                            for container in containers:
                                if running(container) and container["name"] in results:
                                    record_exit(container)
                        publish()

        if stuck:
            wait_for(lambda: False)  # until the pod is deleted
        # Then the sidecars are stopped, the last started first, within the pod's grace period.
        pod_state["stopping"] = True
        deadline = time.time() + grace
        for container in reversed(inits):
            if is_sidecar(container) and running(container):
                self.stop_processes([current[container["name"]]], deadline)
        everything = inits + containers
        wait_for(lambda: all(c["name"] in results for c in everything if running(c)), until_deleted=False)
        with self.cond:
            for container in everything:
                if running(container):
                    record_exit(container)
        ends = [statuses[c["name"]]["state"].get("terminated") for c in containers]
        succeeded = not init_failed and all(end is not None and end["exitCode"] == 0 for end in ends)
        pod_state["phase"] = "Succeeded" if succeeded else "Failed"
        publish()
        with self.cond:
            self.processes.pop(key, None)
            self.cond.notify_all()
            obj = self.objects.get(("pods", namespace, name))
            remove = obj is not None and obj["metadata"]["uid"] == uid and "deletionTimestamp" in obj["metadata"]
        if remove:
            self.remove("pods", namespace, name)

    def watch_container(self, namespace, pod, container, init, proc, results):
        """Reads a container's output into its log, each line stamped as it is read (stdout and stderr apart,
        as the container runtime does), then records how it ended in `results`."""
        cname = container["name"]
        counter = {"lines": 0, "reason": None}
        count_lock = threading.Lock()

        def targets(rule):
            # A fault that names no container hits the pod's containers, not its init containers.
            return re.search(rule.get("path", ""), pod) and (rule["container"] == cname if "container" in rule else not init)

        def read(stream):
            for raw in iter(stream.readline, b""):
                self.append_log(namespace, pod, cname, raw.rstrip(b"\n"))
                with count_lock:
                    counter["lines"] += 1
                    lines = counter["lines"]
                if self.faults.take(lambda r: r.get("oomAfterLines") == lines and targets(r)):
                    os.killpg(proc.pid, signal.SIGKILL)
                    counter["reason"] = "OOMKilled"
                if self.faults.take(lambda r: r.get("deleteAfterLines") == lines and targets(r)):
                    self.delete("pods", namespace, pod, 0, "Background")

        readers = [threading.Thread(target=read, args=(s,), daemon=True) for s in (proc.stdout, proc.stderr)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        code = proc.wait()
        if code < 0:
            code = 128 - code
        with self.cond:
            results[cname] = (code, counter["reason"] or ("Completed" if code == 0 else "Error"), rfc3339(), None)
            self.cond.notify_all()

    def pod_volumes(self, pod):
        """The host folder of each emptyDir volume of a pod (where the kubelet keeps them), made now."""
        root = os.path.join(self.directory, "pods", pod["metadata"]["uid"], "volumes", "kubernetes.io~empty-dir")
        folders = {}
        for volume in pod["spec"].get("volumes", []):
            if "emptyDir" in volume:
                folders[volume["name"]] = os.path.join(root, volume["name"])
                os.makedirs(folders[volume["name"]], exist_ok=True)
        return folders

    def start_process(self, container, volumes, python_bin=None):
        """Starts a container's command + args as a process group of its own. A container that mounts
        emptyDir volumes runs in a mount namespace of its own, where each volume's folder is bound at
        its mountPath; the host sees none of it."""
        argv = list(container.get("command", [])) + list(container.get("args", []))
        env = dict(os.environ)
        if python_bin:
            env["PATH"] = python_bin + os.pathsep + env.get("PATH", "")
            env.pop("VIRTUAL_ENV", None)
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
        working_dir = container.get("workingDir")
        cwd = working_dir if working_dir and os.path.isdir(working_dir) else os.getcwd()
        mounts = []
        for mount in container.get("volumeMounts", []):
            source = volumes.get(mount.get("name"))
            if source is None:
                continue
            if mount.get("subPath"):
                source = os.path.join(source, mount["subPath"])
                os.makedirs(source, exist_ok=True)
            mounts += [source, mount["mountPath"], "ro" if mount.get("readOnly") else "rw"]
        if mounts and argv:
            # The command must exist before the namespace is made, so that a missing one is a StartError as without volumes.
            if not (os.access(argv[0], os.X_OK) if os.sep in argv[0] else shutil.which(argv[0], path=env.get("PATH"))):
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", argv[0])
            user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
            argv = (["unshare", "--mount", "--propagation", "private"] + user
                    + ["sh", "-c", MOUNT_VOLUMES, "sh", working_dir or ""] + mounts + ["--"] + argv)
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)

    def python_environment(self, namespace, pod, container):
        """The bin folder of a new virtual environment (with pip) for one container of a pod."""
        root = os.path.join(self.directory, "containers", namespace, f"{pod}-{uuid.uuid4().hex[:6]}", container)
        python = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([python, "-m", "venv", root], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return os.path.join(root, "bin")

    def append_log(self, namespace, pod, container, line):
        with self.cond:
            self.logs.setdefault((namespace, pod, container), []).append((time.time_ns(), line))
            self.cond.notify_all()

    @staticmethod
    def stop_processes(procs, deadline):
        """SIGTERM to each container's main process (only it, as a container runtime signals only PID 1: a
        shell's running children finish their work), then SIGKILL to what is left of their groups at the deadline."""
        for proc in procs:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        while time.time() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.05)
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill_pod(self, namespace, name, grace):
        with self.cond:
            procs = list(self.processes.get((namespace, name), []))
        if not procs:
            self.remove("pods", namespace, name)
            return
        # The containers first, then the sidecars, the last started first, all within the grace period.
        deadline = time.time() + (grace if grace is not None else 30)
        self.stop_processes([proc for _, sidecar, proc in procs if not sidecar], deadline)
        for _, sidecar, proc in reversed(procs):
            if sidecar:
                self.stop_processes([proc], deadline)
        # The kubelet thread records the termination, then removes the pod.

    # -- the Job controller

    def job_controller(self, namespace, name):
        job = self.get("jobs", namespace, name)
        spec = job["spec"]
        backoff_limit = spec.get("backoffLimit", 6)
        deadline = spec.get("activeDeadlineSeconds")
        started = time.time()
        self.update("jobs", namespace, name, lambda j: j["status"].update(startTime=rfc3339(), active=0))
        failures = 0
        while True:
            job = self.objects.get(("jobs", namespace, name))
            if job is None or "deletionTimestamp" in job["metadata"]:
                return
            template = json.loads(json.dumps(spec["template"]))
            metadata = template.setdefault("metadata", {})
            labels = metadata.setdefault("labels", {})
            labels.update({"job-name": name, "batch.kubernetes.io/job-name": name, "controller-uid": job["metadata"]["uid"],
                           "batch.kubernetes.io/controller-uid": job["metadata"]["uid"]})
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{name}-{uuid.uuid4().hex[:5]}", "namespace": namespace, "labels": labels,
                                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                                     "uid": job["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]},
                   "spec": template.get("spec", {})}
            try:
                created = self.create("pods", namespace, pod)
            except APIError:
                # As the real controller: try again later (it records a FailedCreate event), the Job stays active.
                time.sleep(1)
                continue
            pod_name = created["metadata"]["name"]
            self.update("jobs", namespace, name, lambda j: j["status"].update(active=1))
            phase = None
            while phase not in ("Succeeded", "Failed"):
                with self.cond:
                    self.cond.wait(0.2)
                    current = self.objects.get(("pods", namespace, pod_name))
                    job_now = self.objects.get(("jobs", namespace, name))
                if job_now is None or "deletionTimestamp" in job_now["metadata"]:
                    return
                if current is None:
                    phase = "Failed"
                    break
                phase = current["status"].get("phase")
                if deadline is not None and time.time() - started > deadline:
                    self.delete("pods", namespace, pod_name, 0, "Background")
                    self.update("jobs", namespace, name, lambda j: j["status"].update(active=0, failed=failures + 1, conditions=[
                        {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded",
                         "message": "Job was active longer than specified deadline", "lastTransitionTime": rfc3339()},
                        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                         "message": "Job was active longer than specified deadline", "lastTransitionTime": rfc3339()}]))
                    return
            if phase == "Succeeded":
                self.update("jobs", namespace, name, lambda j: j["status"].update(active=0, succeeded=1, completionTime=rfc3339(), conditions=[
                    {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                     "message": "Reached expected number of succeeded pods", "lastTransitionTime": rfc3339()},
                    {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                     "message": "Reached expected number of succeeded pods", "lastTransitionTime": rfc3339()}]))
                return
            failures += 1
            if failures > backoff_limit:
                self.update("jobs", namespace, name, lambda j: j["status"].update(active=0, failed=failures, conditions=[
                    {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit", "lastTransitionTime": rfc3339()},
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit", "lastTransitionTime": rfc3339()}]))
                return
            self.update("jobs", namespace, name, lambda j: j["status"].update(active=0, failed=failures))
            # The real controller waits before the next pod (10 s, doubling); a second here keeps tests short.
            time.sleep(1)

    # -- the training operator (PyTorchJob)

    def set_condition(self, status, kind, true, reason, message):
        """As the training operator sets a job condition: Running turns False when the job ends, Running and
        Restarting replace each other, nothing changes once the job has Failed."""
        conditions = status.setdefault("conditions", [])
        if any(c["type"] == "Failed" and c["status"] == "True" for c in conditions):
            return
        current = next((c for c in conditions if c["type"] == kind), None)
        value = "True" if true else "False"
        if current and current["status"] == value and current["reason"] == reason:
            return
        now = rfc3339()
        made = {"type": kind, "status": value, "reason": reason, "message": message, "lastUpdateTime": now,
                "lastTransitionTime": current["lastTransitionTime"] if current and current["status"] == value else now}
        kept = []
        for c in conditions:
            if c["type"] == kind or {c["type"], kind} == {"Running", "Restarting"}:
                continue
            if kind in ("Succeeded", "Failed") and c["type"] == "Running":
                c = dict(c, status="False")
            kept.append(c)
        status["conditions"] = kept + [made]

    def pytorchjob_controller(self, namespace, name):
        """Runs a PyTorchJob as the training operator does: `replicas` pods of each replica type (NAME-master-0,
        NAME-worker-0…) from its template, with the operator's labels, env and an ownerReference to the job; a
        replica that fails is started again unless its restartPolicy is Never (ExitCode: only for exit codes
        of 128 and more), and then the job has Failed. The job has Succeeded when its master has (or, without
        a master, all its workers have). Pods are left as they are at the end (cleanPodPolicy None), or
        deleted (All) or the running ones deleted (Running)."""
        resource = "pytorchjobs.kubeflow.org"
        try:
            job = self.get(resource, namespace, name)
        except APIError:
            return
        uid = job["metadata"]["uid"]
        spec = job["spec"]
        replicas = {t: r for t, r in sorted(spec["pytorchReplicaSpecs"].items(), key=lambda i: i[0] != "Master")}
        total = sum(r.get("replicas", 1) for r in replicas.values())
        nproc = spec.get("nprocPerNode", "auto")
        world_size = total * (int(nproc) if str(nproc).isdigit() else 1)
        # A port of the job's own, where the operator gives the master's pytorchjob-port: every job's master here
        # listens on 127.0.0.1, so two jobs running at once would otherwise clash.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            master_port = probe.getsockname()[1]

        def change_status(change):
            def apply(j):
                j.setdefault("status", {})
                change(j["status"])
            return self.update(resource, namespace, name, apply)

        def created(status):
            status.update(startTime=rfc3339(), replicaStatuses={t: {} for t in replicas})
            self.set_condition(status, "Created", True, "PyTorchJobCreated", f"PyTorchJob {name} is created.")
        change_status(created)

        def pod_for(rtype, index):
            replica = replicas[rtype]
            template = json.loads(json.dumps(replica.get("template", {})))
            metadata = template.setdefault("metadata", {})
            labels = metadata.setdefault("labels", {})
            labels.update({"training.kubeflow.org/operator-name": "pytorchjob-controller", "training.kubeflow.org/job-name": name,
                           "training.kubeflow.org/replica-type": rtype.lower(), "training.kubeflow.org/replica-index": str(index)})
            if rtype == "Master" or ("Master" not in replicas and index == 0):
                labels["training.kubeflow.org/job-role"] = "master"
            pod_spec = template.setdefault("spec", {})
            pod_spec["restartPolicy"] = {"ExitCode": "Never"}.get(replica.get("restartPolicy", "OnFailure"), replica.get("restartPolicy", "OnFailure"))
            rank = index + 1 if rtype == "Worker" and "Master" in replicas else index
            for container in pod_spec.get("containers", []):
                env = container.setdefault("env", [])
                env.append({"name": "PYTHONUNBUFFERED", "value": "1"})
                if "Master" in replicas:
                    # The operator gives the master's Service name (NAME-master-0) and its pytorchjob-port; pods here
                    # are local processes.
                    env += [{"name": "MASTER_PORT", "value": str(master_port)}, {"name": "PET_MASTER_PORT", "value": str(master_port)},
                            {"name": "MASTER_ADDR", "value": "127.0.0.1"}, {"name": "PET_MASTER_ADDR", "value": "127.0.0.1"},
                            {"name": "WORLD_SIZE", "value": str(world_size)}, {"name": "RANK", "value": str(rank)},
                            {"name": "PET_NODE_RANK", "value": str(rank)}]
                if spec.get("nprocPerNode") is not None:
                    env.append({"name": "PET_NPROC_PER_NODE", "value": str(spec["nprocPerNode"])})
                env.append({"name": "PET_NNODES", "value": str(total)})
            metadata["name"] = f"{name}-{rtype.lower()}-{index}"
            metadata["namespace"] = namespace
            metadata["ownerReferences"] = [{"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "name": name, "uid": uid,
                                            "controller": True, "blockOwnerDeletion": True}]
            return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}

        while True:
            with self.cond:
                job = self.objects.get((resource, namespace, name))
                if job is None or job["metadata"]["uid"] != uid or "deletionTimestamp" in job["metadata"]:
                    return
                pods = {o["metadata"]["name"]: json.loads(json.dumps(o)) for o in self.dependents(namespace, uid)}
            counts = {t: {"active": 0, "succeeded": 0, "failed": 0} for t in replicas}
            restarting = []
            for rtype, replica in replicas.items():
                for index in range(replica.get("replicas", 1)):
                    pod_name = f"{name}-{rtype.lower()}-{index}"
                    pod = pods.get(pod_name)
                    if pod is None:
                        try:
                            self.create("pods", namespace, pod_for(rtype, index))
                        except APIError:
                            pass  # as the operator: tried again at the next sync
                        continue
                    phase = pod["status"].get("phase")
                    if "deletionTimestamp" in pod["metadata"]:
                        continue
                    if phase == "Running":
                        counts[rtype]["active"] += 1
                    elif phase == "Succeeded":
                        counts[rtype]["succeeded"] += 1
                    elif phase == "Failed":
                        code = next((s["state"]["terminated"]["exitCode"] for s in pod["status"].get("containerStatuses", [])
                                     if s["name"] == "pytorch" and "terminated" in s.get("state", {})), 0xbeef)
                        policy = replica.get("restartPolicy", "OnFailure")
                        if policy in ("OnFailure", "Always") or (policy == "ExitCode" and code >= 128):
                            restarting.append((rtype, pod_name))
                        else:
                            counts[rtype]["failed"] += 1
            for rtype, pod_name in restarting:
                self.delete("pods", namespace, pod_name, 0, "Background")
            finished = []

            def sync(status):
                status["replicaStatuses"] = {t: {k: v for k, v in c.items() if v} | {
                    "selector": f"training.kubeflow.org/job-name={name},training.kubeflow.org/operator-name=pytorchjob-controller,"
                                f"training.kubeflow.org/replica-type={t.lower()}"} for t, c in counts.items()}
                for rtype, _ in restarting:
                    self.set_condition(status, "Restarting", True, "PyTorchJobRestarting",
                                       f"job {name} is restarting because {rtype} replica(s) failed.")
                for rtype, replica in replicas.items():
                    c = counts[rtype]
                    expected = replica.get("replicas", 1) - c["succeeded"]
                    # The operator words these differently with a master and without one.
                    if "Master" in replicas and rtype == "Master":
                        if c["active"] > 0 and expected > 0:
                            self.set_condition(status, "Running", True, "PyTorchJobRunning", f"PyTorchJob {name} is running.")
                        if expected == 0:
                            status.setdefault("completionTime", rfc3339())
                            self.set_condition(status, "Succeeded", True, "PyTorchJobSucceeded", f"PyTorchJob {name} is successfully completed.")
                            finished.append("Succeeded")
                            return
                    elif "Master" not in replicas and rtype == "Worker":
                        if expected == 0:
                            status.setdefault("completionTime", rfc3339())
                            self.set_condition(status, "Succeeded", True, "PyTorchJobSucceeded",
                                               f"PyTorchJob {namespace}/{name} successfully completed.")
                            finished.append("Succeeded")
                            return
                        if c["active"] > 0:
                            self.set_condition(status, "Running", True, "PyTorchJobRunning", f"PyTorchJob {namespace}/{name} is running.")
                    if c["failed"] > 0:
                        status.setdefault("completionTime", rfc3339())
                        message = f"job \"{name}\" is failing because \"{rtype}\" replica(s) failed." \
                            if replica.get("restartPolicy") == "ExitCode" else \
                            f"PyTorchJob {name} is failed because {c['failed']} {rtype} replica(s) failed."
                        self.set_condition(status, "Failed", True, "PyTorchJobFailed", message)
                        finished.append("Failed")
                        return
            with self.cond:
                current = self.objects.get((resource, namespace, name))
                if current is None or "deletionTimestamp" in current["metadata"]:
                    return
                before = json.dumps(current.get("status", {}), sort_keys=True)
                status = json.loads(before)
                sync(status)
                if json.dumps(status, sort_keys=True) != before:
                    current["status"] = status
                    self.bump(resource, "MODIFIED", current)
            if finished:
                policy = spec.get("runPolicy", {}).get("cleanPodPolicy", "None")
                for pod in self.dependents(namespace, uid):
                    if policy == "All" or policy == "Running" and pod["status"].get("phase") in ("Pending", "Running"):
                        try:
                            self.delete("pods", namespace, pod["metadata"]["name"], 0, "Background")
                        except APIError:
                            pass
                return
            with self.cond:
                self.cond.wait(0.2)

    # -- an Argo Workflows controller

    def workflow_controller(self, namespace, name):
        """Runs a Workflow as Argo's controller does for `container` and `steps` templates: the entrypoint's node,
        a pod for each container template (named as Argo names pods, labelled workflows.argoproj.io/workflow,
        its container named main), the step groups of a steps template one after the other (the steps of a
        group beside each other), `status.nodes` as Argo fills them, and `status.phase` Running, then
        Succeeded or Failed with the failing node's message."""
        resource = "workflows.argoproj.io"
        try:
            workflow = self.get(resource, namespace, name)
        except APIError:
            return
        uid = workflow["metadata"]["uid"]
        spec = workflow["spec"]
        templates = {t.get("name"): t for t in spec.get("templates", []) if isinstance(t, dict)}
        started = rfc3339()
        nodes = {}
        lock = threading.Lock()

        def node_id(node_name):
            return name if node_name == name else f"{name}-{fnv32a(node_name)}"

        def publish(phase, message=None):
            with lock:
                snapshot = json.loads(json.dumps(nodes))
            pods = [n for n in snapshot.values() if n["type"] == "Pod"]
            done = phase in ("Succeeded", "Failed", "Error")

            def change(w):
                labels = w["metadata"].setdefault("labels", {})
                labels["workflows.argoproj.io/phase"] = phase
                labels["workflows.argoproj.io/completed"] = "true" if done else "false"
                status = {"phase": phase, "startedAt": started, "finishedAt": rfc3339() if done else None,
                          "progress": f"{sum(n['phase'] == 'Succeeded' for n in pods)}/{len(pods)}", "nodes": snapshot}
                if message:
                    status["message"] = message
                w["status"] = status
            with self.cond:
                current = self.objects.get((resource, namespace, name))
                if current is None or current["metadata"]["uid"] != uid:
                    return
                change(current)
                self.bump(resource, "MODIFIED", current)

        def stopped():
            current = self.objects.get((resource, namespace, name))
            return current is None or current["metadata"]["uid"] != uid or "deletionTimestamp" in current["metadata"]

        def add_node(node_name, display, kind, template, boundary):
            made = {"id": node_id(node_name), "name": node_name, "displayName": display, "type": kind, "templateName": template,
                    "templateScope": f"local/{name}", "phase": "Running" if kind != "Pod" else "Pending", "startedAt": rfc3339()}
            if boundary:
                made["boundaryID"] = boundary
            with lock:
                nodes[made["id"]] = made
            return made

        def end_node(node, phase, message=None, exit_code=None):
            with lock:
                node.update(phase=phase, finishedAt=rfc3339())
                if message:
                    node["message"] = message
                if exit_code is not None:
                    node["outputs"] = {"exitCode": str(exit_code)}
            return phase

        def link(parent, child):
            with lock:
                parent.setdefault("children", []).append(child["id"])

        def run(template_name, node_name, display, boundary):
            """Runs a template as a node; its node, ended (None if the workflow went meanwhile)."""
            template = templates.get(template_name)
            if "container" in template:
                return run_pod(template, node_name, display, boundary)
            node = add_node(node_name, display, "Steps", template_name, boundary)
            publish("Running")
            previous = [node]
            for index, group in enumerate(template["steps"]):
                group_node = add_node(f"{node_name}[{index}]", f"[{index}]", "StepGroup", template_name, node["id"])
                for parent in previous:
                    link(parent, group_node)
                results = {}

                def step(item):
                    results[item["name"]] = run(item["template"], f"{node_name}[{index}].{item['name']}", item["name"], node["id"])
                threads = [threading.Thread(target=step, args=(item,), daemon=True) for item in group]
                for item, thread in zip(group, threads):
                    thread.start()
                for thread in threads:
                    thread.join()
                children = [results.get(item["name"]) for item in group]
                if any(child is None for child in children):
                    return None
                for child in children:
                    link(group_node, child)
                failed = next((c for c in children if c["phase"] != "Succeeded"), None)
                if failed:
                    end_node(group_node, "Failed", f"child '{failed['id']}' failed")
                    end_node(node, "Failed", f"child '{failed['id']}' failed")
                    return node
                end_node(group_node, "Succeeded")
                previous = children
            end_node(node, "Succeeded")
            return node

        def run_pod(template, node_name, display, boundary):
            node = add_node(node_name, display, "Pod", template["name"], boundary)
            pod_name = name if node["id"] == name else f"{name}-{template['name']}-{fnv32a(node_name)}"
            container = dict(template["container"], name="main")
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels.update({"workflows.argoproj.io/workflow": name, "workflows.argoproj.io/completed": "false"})
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": pod_name, "namespace": namespace, "labels": labels,
                                "annotations": dict((template.get("metadata") or {}).get("annotations") or {},
                                                    **{"workflows.argoproj.io/node-name": node_name, "workflows.argoproj.io/node-id": node["id"]}),
                                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": name, "uid": uid,
                                                     "controller": True, "blockOwnerDeletion": True}]},
                   "spec": {"restartPolicy": "Never", "containers": [container]}}
            if spec.get("volumes") or template.get("volumes"):
                pod["spec"]["volumes"] = list(spec.get("volumes", [])) + list(template.get("volumes", []))
            try:
                self.create("pods", namespace, pod)
            except APIError as error:
                end_node(node, "Error", error.message)
                publish("Running")
                return node
            publish("Running")
            phase = None
            while phase not in ("Succeeded", "Failed"):
                with self.cond:
                    if stopped():
                        return None
                    current = self.objects.get(("pods", namespace, pod_name))
                    if current is None:
                        end_node(node, "Error", "pod deleted")
                        return node
                    phase = current["status"].get("phase")
                    if phase == "Running" and node["phase"] == "Pending":
                        with lock:
                            node["phase"] = "Running"
                        threading.Thread(target=publish, args=("Running",), daemon=True).start()
                    if phase not in ("Succeeded", "Failed"):
                        self.cond.wait(0.2)
            terminated = next((s["state"]["terminated"] for s in current["status"].get("containerStatuses", [])
                               if s["name"] == "main" and "terminated" in s.get("state", {})), {})
            code = terminated.get("exitCode")
            if phase == "Succeeded":
                end_node(node, "Succeeded", exit_code=code)
            elif terminated.get("reason") == "OOMKilled":
                end_node(node, "Failed", "OOMKilled (exit code 137)", exit_code=code)
            else:
                end_node(node, "Failed", f"Error (exit code {code})", exit_code=code)
            self.update("pods", namespace, pod_name, lambda p: p["metadata"]["labels"].update({"workflows.argoproj.io/completed": "true"}))
            return node

        # As Argo's validation of a workflow before it runs: what it cannot run fails the workflow at once.
        problem = None
        entry = spec.get("entrypoint")
        if not entry:
            problem = "spec.entrypoint is required"
        elif entry not in templates:
            problem = f"spec.entrypoint template '{entry}' undefined"
        else:
            for template in templates.values():
                for group in template.get("steps", []) or []:
                    for item in group if isinstance(group, list) else []:
                        if item.get("template") not in templates:
                            problem = f"templates.{template['name']}.steps failed to resolve {{{{template: {item.get('template')}}}}}"
                if not any(k in template for k in ("container", "steps")):
                    problem = f"templates.{template.get('name')} is a kind of template this cluster does not run (only container and steps)"
        if problem:
            publish("Failed", f"invalid spec: {problem}")
            return
        publish("Running")
        root = run(entry, name, name, None)
        if root is None:
            return
        # As Argo: an Error node (its pod could not be made) errs the workflow, a Failed one fails it.
        publish(root["phase"] if root["phase"] in ("Succeeded", "Error") else "Failed", root.get("message"))

    def delete_job(self, namespace, name, grace, propagation):
        if propagation != "Orphan":
            pods, _ = self.list("pods", namespace, {"job-name": ("=", name)})
            for pod in pods:
                try:
                    # The garbage collector deletes the pods with their own grace period, not the Job's.
                    own_grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
                    self.delete("pods", namespace, pod["metadata"]["name"], own_grace, "Background")
                except APIError:
                    pass
            if propagation == "Foreground":
                while True:
                    remaining, _ = self.list("pods", namespace, {"job-name": ("=", name)})
                    if not remaining:
                        break
                    time.sleep(0.05)
        self.remove("jobs", namespace, name)


def fnv32a(text):
    """The 32-bit FNV-1a hash of a text, as Argo derives node IDs and pod names from node names."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def merge_patch(target, patch):
    """RFC 7386: objects merge key by key, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def container_status(pod, container):
    """A pod's status of one of its containers or init containers; {} when it has none yet."""
    status = pod.get("status", {})
    return next((s for s in status.get("initContainerStatuses", []) + status.get("containerStatuses", []) if s["name"] == container), {})


def parse_selector(text):
    selector = {}
    for part in filter(None, (text or "").split(",")):
        if "!=" in part:
            key, value = part.split("!=", 1)
            selector[key.strip()] = ("!=", value.strip())
        elif "=" in part:
            key, value = re.split(r"==?", part, maxsplit=1)
            selector[key.strip()] = ("=", value.strip())
        else:
            selector[part.strip()] = ("exists", None)
    return selector


def matches(selector, obj):
    labels = obj.get("metadata", {}).get("labels", {}) or {}
    for key, (op, value) in selector.items():
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# HTTP

ROUTE = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<namespace>[^/]+)/(?P<plural>[^/]+)"
                   r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$")


def resolve(path):
    """(resource id, namespace, name, subresource) of a path this cluster serves, or None."""
    match = ROUTE.match(path)
    if not match:
        return None
    group, version = ("", "v1") if match["core"] else (match["group"], match["version"])
    rtype = next((r for r in RESOURCES.values() if (r.group, r.version, r.plural) == (group, version, match["plural"])), None)
    if rtype is None:
        return None
    sub = match["sub"]
    if sub and not ((sub == "log" and rtype.log) or (sub == "status" and rtype.status)):
        return None
    return rtype.id, match["namespace"], match["name"], sub


def api_resource_list(group_version, served):
    """An APIResourceList: each resource (and its subresources) of one group version, with the verbs served here."""
    resources = []
    for r in served:
        verbs = ["create", "delete", "get", "list", "watch"]
        made = {"name": r.plural, "singularName": r.singular, "namespaced": True, "kind": r.kind, "verbs": verbs}
        if r.short_names:
            made["shortNames"] = r.short_names
        if r.categories:
            made["categories"] = r.categories
        resources.append(made)
        if r.log:
            resources.append({"name": f"{r.plural}/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]})
        if r.status:
            resources.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": True, "kind": r.kind,
                              "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def discovery(path, server_address):
    """The discovery documents (/api, /api/v1, /apis, /apis/GROUP, /apis/GROUP/VERSION) of what this cluster serves;
    None for a path that is not one."""
    served = list(RESOURCES.values())
    groups = {}
    for r in served:
        if r.group:
            groups.setdefault(r.group, []).append(r)
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}
    if path == "/api/v1":
        return api_resource_list("v1", [r for r in served if not r.group])

    def api_group(name):
        versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in sorted({r.version for r in groups[name]})]
        return {"name": name, "versions": versions, "preferredVersion": versions[0]}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group(g) for g in groups]}
    parts = path.split("/")[2:]
    if len(parts) == 1 and parts[0] in groups:
        return dict(api_group(parts[0]), kind="APIGroup", apiVersion="v1")
    if len(parts) == 2 and parts[0] in groups:
        in_version = [r for r in groups[parts[0]] if r.version == parts[1]]
        if in_version:
            return api_resource_list(f"{parts[0]}/{parts[1]}", in_version)
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cluster: Cluster = None
    token = None

    def log_message(self, format, *args):
        # One line per request (method, path, status) in the server's log, for a test that fails.
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    # -- plumbing

    def send_json(self, code, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def send_error_status(self, error):
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
        self.send_json(error.code, error.status(), headers)

    def start_chunked(self, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def authenticated(self):
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        if cert:
            return True
        auth = self.headers.get("Authorization", "")
        return self.token is not None and auth == f"Bearer {self.token}"

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if not data:
            return {}
        try:
            return json.loads(data)
        except ValueError:
            raise APIError(400, "BadRequest", "the body of the request is not JSON")

    # -- dispatch

    def handle_any(self, method):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if not self.authenticated():
                raise APIError(401, "Unauthorized", "Unauthorized")
            rule = self.cluster.faults.take(lambda r: r.get("status") and not r.get("afterServing")
                                            and r.get("method", method) == method and re.search(r.get("path", ""), url.path))
            if rule:
                raise APIError(rule["status"], rule.get("reason", {429: "TooManyRequests", 401: "Unauthorized", 403: "Forbidden",
                                                                   422: "Invalid", 404: "NotFound"}.get(rule["status"], "InternalError")),
                               rule.get("message", "injected fault"), rule.get("retryAfter"))
            if method == "GET":
                document = discovery(url.path.rstrip("/") or "/", f"127.0.0.1:{self.server.server_address[1]}")
                if document is not None:
                    return self.send_json(200, document)
            resolved = resolve(url.path)
            if resolved:
                resource, namespace, name, sub = resolved
                kind = "collection" if name is None else (sub or "object")
                return self.route(method, kind, (namespace, resource, name), query, url.path)
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        except APIError as error:
            self.send_error_status(error)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def after_serving(self, method, path):
        rule = self.cluster.faults.take(lambda r: r.get("status") and r.get("afterServing")
                                        and r.get("method", method) == method and re.search(r.get("path", ""), path))
        if rule:
            raise APIError(rule["status"], "InternalError", rule.get("message", "injected fault after serving"))

    def route(self, method, kind, groups, query, path):
        cluster = self.cluster
        namespace, resource = groups[0], groups[1]
        rtype = RESOURCES[resource]
        if kind == "collection" and method == "GET":
            selector = parse_selector(query.get("labelSelector"))
            if query.get("watch") in ("true", "1"):
                return self.watch(resource, namespace, selector, query)
            items, rv = cluster.list(resource, namespace, selector)
            return self.send_json(200, {"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": {"resourceVersion": rv},
                                        "items": items})
        if kind == "collection" and method == "POST":
            validation = query.get("fieldValidation")
            if validation not in (None, "Ignore", "Warn", "Strict"):
                raise APIError(400, "BadRequest", f"fieldValidation parameter unsupported: {validation}. "
                               "Valid options are Ignore, Warn, and Strict")
            warnings = []
            created = cluster.create(resource, namespace, self.body(), validation, warnings)
            self.after_serving(method, path)
            quoted = ['299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings]
            return self.send_json(201, created, {"Warning": ", ".join(quoted)} if warnings else None)
        name = groups[2]
        if kind == "object" and method == "GET":
            return self.send_json(200, cluster.get(resource, namespace, name))
        if kind == "status" and method == "GET":
            return self.send_json(200, cluster.get(resource, namespace, name))
        if kind == "status" and method in ("PUT", "PATCH"):
            if method == "PATCH" and self.headers.get("Content-Type", "").split(";")[0].strip() != "application/merge-patch+json":
                raise APIError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types "
                               "include: application/merge-patch+json")
            return self.send_json(200, cluster.update_status(resource, namespace, name, self.body(), method == "PATCH"))
        if kind == "object" and method == "DELETE":
            options = self.body()
            grace = int(query.get("gracePeriodSeconds", options.get("gracePeriodSeconds", 30)))
            propagation = query.get("propagationPolicy", options.get("propagationPolicy", "Background"))
            return self.send_json(200, cluster.delete(resource, namespace, name, grace, propagation))
        if kind == "log" and method == "GET":
            return self.log(namespace, name, query)
        raise APIError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource")

    def watch(self, resource, namespace, selector, query):
        cluster = self.cluster
        since = int(query.get("resourceVersion") or 0)
        deadline = time.time() + int(query.get("timeoutSeconds") or 1800)
        if cluster.faults.take(lambda r: r.get("watchGone")):
            self.start_chunked("application/json")
            self.chunk((json.dumps({"type": "ERROR", "object": APIError(410, "Expired", f"too old resource version: {since} ({cluster.rv})").status()}) + "\n").encode())
            return self.end_chunked()
        with cluster.cond:
            oldest = cluster.events[0][0] if cluster.events else cluster.rv + 1
            gone = since and since < oldest - 1 and since < cluster.rv
        self.start_chunked("application/json")
        if gone:
            self.chunk((json.dumps({"type": "ERROR", "object": APIError(410, "Expired", f"too old resource version: {since} ({oldest})").status()}) + "\n").encode())
            return self.end_chunked()
        position = since
        try:
            while time.time() < deadline:
                with cluster.cond:
                    pending = [e for e in cluster.events if e[0] > position]
                    if not pending:
                        cluster.cond.wait(min(0.5, max(0.01, deadline - time.time())))
                        continue
                for rv, event_resource, event_namespace, event_type, obj in pending:
                    position = rv
                    if event_resource == resource and event_namespace == namespace and matches(selector, obj):
                        self.chunk((json.dumps({"type": event_type, "object": obj}) + "\n").encode())
            self.end_chunked()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def log(self, namespace, name, query):
        cluster = self.cluster
        pod = cluster.get("pods", namespace, name)
        regular = [c["name"] for c in pod["spec"]["containers"]]
        every = [c["name"] for c in pod["spec"].get("initContainers", [])] + regular
        container = query.get("container")
        # The API server's checks, then the kubelet's.
        if not container:
            if len(regular) != 1:
                raise APIError(400, "BadRequest", f"a container name must be specified for pod {name}, choose one of: [{' '.join(every)}]")
            container = regular[0]
        if container not in every:
            raise APIError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        status = container_status(pod, container)
        state = status.get("state", {})
        if (not state or "waiting" in state) and "terminated" not in status.get("lastState", {}):
            reason = state.get("waiting", {}).get("reason", "ContainerCreating")
            said = {"ErrImagePull": "image can't be pulled", "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
            raise APIError(400, "BadRequest", f"container \"{container}\" in pod \"{name}\" is waiting to start: {said}")
        follow = query.get("follow") in ("true", "1")
        timestamps = query.get("timestamps") in ("true", "1")
        since = parse_rfc3339_seconds(query["sinceTime"]) if query.get("sinceTime") else None
        drop = cluster.faults.take(lambda r: r.get("logDropAfterLines") and r.get("follow", follow) == follow)
        key = (namespace, name, container)
        tail = query.get("tailLines")
        if tail is not None and not tail.isdigit():
            raise APIError(400, "BadRequest", f"tailLines: Invalid value: \"{tail}\": must be an integer")
        self.start_chunked("text/plain")
        sent = 0
        index = 0
        if tail is not None:
            # The last N lines, then (when following) what comes next.
            with cluster.cond:
                index = max(0, len(cluster.logs.get(key, [])) - int(tail))
        try:
            while True:
                with cluster.cond:
                    lines = cluster.logs.get(key, [])[index:]
                    index += len(lines)
                    obj = cluster.objects.get(("pods", namespace, name))
                    # A followed log ends when its container ends, or its pod goes.
                    done = obj is None or "terminated" in container_status(obj, container).get("state", {})
                    if not lines and follow and not done:
                        cluster.cond.wait(0.5)
                        continue
                for stamp, line in lines:
                    if since is not None and stamp // 1_000_000_000 < since:
                        continue
                    self.chunk((rfc3339nano(stamp).encode() + b" " if timestamps else b"") + line + b"\n")
                    sent += 1
                    if drop and sent >= drop["logDropAfterLines"]:
                        # Cut the connection without ending the chunked body, as a dropped stream looks.
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                if not follow or done:
                    with cluster.cond:
                        if len(cluster.logs.get(key, [])) > index:
                            continue
                    break
            self.end_chunked()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where the certificates, kubeconfig and created.jsonl go")
    parser.add_argument("--faults", default="[]", help="fault rules, JSON (see Faults)")
    parser.add_argument("--token", help="also accept this bearer token")
    parser.add_argument("--namespace", default="default", help="the kubeconfig context's namespace")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--python-images", help="containers whose image matches this regex get a Python environment of their own")
    parser.add_argument("--serve-kinds", default=DEFAULT_SERVED,
                        help="the custom kinds served (their CRDs installed): API groups or PLURAL.GROUP, comma-separated; "
                             f"\"none\" for none (default: {DEFAULT_SERVED})")
    args = parser.parse_args()
    RESOURCES.clear()
    RESOURCES.update({r.id: r for r in served_resources(args.serve_kinds)})
    if any(r in RESOURCES for r in TRAINING_SPECS):
        # The training operator's kinds are checked against its models. Found, not imported: importing them takes
        # seconds, which the first check of such an object pays instead of every start.
        # (find_spec of the submodule would import the package.)
        namespace = importlib.util.find_spec("kubeflow")
        found = namespace is not None and any(os.path.isdir(os.path.join(folder, "training", "models"))
                                              for folder in namespace.submodule_search_locations or [])
        if not found:
            raise SystemExit("serving kubeflow.org needs the kubeflow-training package (.ci/install-deps installs it)")

    os.makedirs(args.dir, exist_ok=True)
    files = make_certificates(args.dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(args.dir, "server.crt"), os.path.join(args.dir, "server.key"))
    context.load_verify_locations(os.path.join(args.dir, "ca.crt"))
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])

    Handler.cluster = Cluster(args.dir, Faults(json.loads(args.faults)), kv_utils.latest_version(), args.python_images)
    Handler.token = args.token
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    write_kubeconfig(args.dir, port, files, args.namespace)
    print(f"listening on https://127.0.0.1:{port}", flush=True)

    def shutdown(*_):
        with Handler.cluster.cond:
            procs = [p for ps in Handler.cluster.processes.values() for _, _, p in ps]
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    server.serve_forever()


if __name__ == "__main__":
    main()
