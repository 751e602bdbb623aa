// Package deploy_test checks the Kubernetes manifests in deploy/base and the
// Dockerfile in deploy. Each manifest is decoded strictly into its k8s.io/api
// type, so a misspelt or misplaced field fails the test. The tests then check
// the settings that the worker depends on at run time, reading the
// container's environment with the worker's own config.Load.
package deploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/contact-sync/contact-sync/config"
)

const (
	baseDir        = "base"
	dockerfilePath = "Dockerfile"
	containerName  = "contact-sync"
	appLabelKey    = "app.kubernetes.io/name"
	appLabelValue  = "contact-sync"

	// nonrootUID is the uid of the nonroot user in the distroless images.
	nonrootUID = 65532
)

// kustomization is the subset of a kustomize Kustomization that the base
// uses. Strict decoding rejects any other key, which keeps fields such as
// namespace out of the base and catches misspelt keys.
type kustomization struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Resources  []string          `json:"resources"`
	Labels     []kustomizeLabels `json:"labels"`
}

// kustomizeLabels is one entry of a Kustomization's labels list.
type kustomizeLabels struct {
	Pairs            map[string]string `json:"pairs"`
	IncludeSelectors bool              `json:"includeSelectors"`
	IncludeTemplates bool              `json:"includeTemplates"`
}

// baseManifests contains the decoded objects of deploy/base, one per kind.
type baseManifests struct {
	kustomization  kustomization
	deployment     *appsv1.Deployment
	configMap      *corev1.ConfigMap
	secret         *corev1.Secret
	pdb            *policyv1.PodDisruptionBudget
	serviceAccount *corev1.ServiceAccount
	service        *corev1.Service
}

// newStrictDecoder returns a YAML decoder for the kinds in the base. It
// rejects unknown fields, fields whose case differs from the API (which
// encoding/json would accept) and duplicate keys, as the API server does in
// strict field validation.
func newStrictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()

	scheme := runtime.NewScheme()
	for _, addToScheme := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme,
		corev1.AddToScheme,
		policyv1.AddToScheme,
	} {
		if err := addToScheme(scheme); err != nil {
			t.Fatalf("register API types: %v", err)
		}
	}

	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
}

// loadKustomization decodes base/kustomization.yaml strictly.
func loadKustomization(t *testing.T) kustomization {
	t.Helper()

	data, err := os.ReadFile(filepath.Join(baseDir, "kustomization.yaml"))
	if err != nil {
		t.Fatalf("read kustomization: %v", err)
	}

	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("decode %s/kustomization.yaml: %v", baseDir, err)
	}
	return k
}

// loadBase decodes every resource that base/kustomization.yaml lists and
// fails the test unless each expected kind appears exactly once.
func loadBase(t *testing.T) baseManifests {
	t.Helper()

	m := baseManifests{kustomization: loadKustomization(t)}
	decoder := newStrictDecoder(t)
	seen := map[string]string{}

	for _, name := range m.kustomization.Resources {
		data, err := os.ReadFile(filepath.Join(baseDir, name))
		if err != nil {
			t.Fatalf("read resource %s listed in kustomization.yaml: %v", name, err)
		}

		obj, gvk, err := decoder.Decode(data, nil, nil)
		if err != nil {
			t.Fatalf("decode %s: %v", name, err)
		}
		if previous, ok := seen[gvk.Kind]; ok {
			t.Fatalf("kind %s appears in both %s and %s, want one of each", gvk.Kind, previous, name)
		}
		seen[gvk.Kind] = name

		if err := m.store(obj); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	if err := m.checkComplete(); err != nil {
		t.Fatal(err)
	}
	return m
}

// store keeps obj in the field for its type.
func (m *baseManifests) store(obj runtime.Object) error {
	switch typed := obj.(type) {
	case *appsv1.Deployment:
		m.deployment = typed
	case *corev1.ConfigMap:
		m.configMap = typed
	case *corev1.Secret:
		m.secret = typed
	case *policyv1.PodDisruptionBudget:
		m.pdb = typed
	case *corev1.ServiceAccount:
		m.serviceAccount = typed
	case *corev1.Service:
		m.service = typed
	default:
		return fmt.Errorf("unexpected kind %T in the base", obj)
	}
	return nil
}

// checkComplete returns an error naming the first expected kind that the
// base lacks.
func (m *baseManifests) checkComplete() error {
	missing := []struct {
		kind    string
		missing bool
	}{
		{"Deployment", m.deployment == nil},
		{"ConfigMap", m.configMap == nil},
		{"Secret", m.secret == nil},
		{"PodDisruptionBudget", m.pdb == nil},
		{"ServiceAccount", m.serviceAccount == nil},
		{"Service", m.service == nil},
	}
	for _, entry := range missing {
		if entry.missing {
			return fmt.Errorf("kustomization.yaml lists no %s", entry.kind)
		}
	}
	return nil
}

// workerContainer returns the contact-sync container of the Deployment.
func workerContainer(t *testing.T, deployment *appsv1.Deployment) corev1.Container {
	t.Helper()

	for _, container := range deployment.Spec.Template.Spec.Containers {
		if container.Name == containerName {
			return container
		}
	}
	t.Fatalf("Deployment %s has no container named %q", deployment.Name, containerName)
	return corev1.Container{}
}

// podEnvironment returns the environment variables that the manifest gives
// the container: the ConfigMap in envFrom, overridden by env entries as in
// Kubernetes. Variables set by valueFrom are left out because the manifest
// does not contain their values.
func podEnvironment(container corev1.Container, configMap *corev1.ConfigMap) map[string]string {
	environment := maps.Clone(configMap.Data)
	if environment == nil {
		environment = map[string]string{}
	}

	for _, env := range container.Env {
		if env.ValueFrom != nil {
			delete(environment, env.Name)
			continue
		}
		environment[env.Name] = env.Value
	}
	return environment
}

// loadWorkerConfig reads the container's environment with the worker's own
// configuration loader, which applies its defaults and validation.
func loadWorkerConfig(t *testing.T, m baseManifests) config.Config {
	t.Helper()

	environment := podEnvironment(workerContainer(t, m.deployment), m.configMap)
	cfg, err := config.Load(environment)
	if err != nil {
		t.Fatalf("the worker rejects the settings in the manifests: %v", err)
	}
	return cfg
}

// containerPort resolves a probe or Service port, by number or by name, to a
// port that the container declares.
func containerPort(container corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, declared := range container.Ports {
		if port.Type == intstr.Int && declared.ContainerPort == port.IntVal {
			return declared.ContainerPort, true
		}
		if port.Type == intstr.String && declared.Name == port.StrVal {
			return declared.ContainerPort, true
		}
	}
	return 0, false
}

func TestKustomization(t *testing.T) {
	k := loadKustomization(t)

	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("apiVersion, kind = %q, %q, want kustomize.config.k8s.io/v1beta1, Kustomization", k.APIVersion, k.Kind)
	}

	for _, name := range k.Resources {
		if _, err := os.Stat(filepath.Join(baseDir, name)); err != nil {
			t.Errorf("resource %s listed in kustomization.yaml: %v", name, err)
		}
	}

	files, err := filepath.Glob(filepath.Join(baseDir, "*.yaml"))
	if err != nil {
		t.Fatalf("list %s: %v", baseDir, err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		if name != "kustomization.yaml" && !slices.Contains(k.Resources, name) {
			t.Errorf("%s is not listed in kustomization.yaml resources, so kustomize ignores it", name)
		}
	}

	labeled := false
	for _, labels := range k.Labels {
		if labels.Pairs[appLabelKey] == appLabelValue {
			labeled = true
		}
	}
	if !labeled {
		t.Errorf("kustomization.yaml labels lack %s: %s", appLabelKey, appLabelValue)
	}
}

func TestStrictDecodingRejectsTypos(t *testing.T) {
	const validDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
spec:
  replicas: 1
  selector:
    matchLabels: {app: typo}
  template:
    metadata:
      labels: {app: typo}
    spec:
      terminationGracePeriodSeconds: 35
      containers:
        - name: worker
          image: example
          securityContext:
            readOnlyRootFilesystem: true
`
	tests := []struct {
		name     string
		old, new string
	}{
		{"unknown field", "terminationGracePeriodSeconds:", "terminationGracePeriod:"},
		{"wrong case", "readOnlyRootFilesystem:", "readOnlyRootFileSystem:"},
		{"duplicate key", "  replicas: 1\n", "  replicas: 1\n  replicas: 2\n"},
		{"field at wrong level", "  replicas: 1\n", "  replicas: 1\n  automountServiceAccountToken: false\n"},
	}

	decoder := newStrictDecoder(t)

	t.Run("valid document", func(t *testing.T) {
		if _, _, err := decoder.Decode([]byte(validDeployment), nil, nil); err != nil {
			t.Fatalf("decode valid Deployment: %v", err)
		}
	})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			document := strings.Replace(validDeployment, tt.old, tt.new, 1)
			if document == validDeployment {
				t.Fatalf("test case did not change the document: %q not found", tt.old)
			}

			_, _, err := decoder.Decode([]byte(document), nil, nil)
			if err == nil {
				t.Fatalf("decode succeeded, want a strict decoding error for %q", tt.new)
			}
			if !runtime.IsStrictDecodingError(err) {
				t.Errorf("error = %v, want a strict decoding error", err)
			}
		})
	}
}

func TestDeploymentSingleConsumer(t *testing.T) {
	m := loadBase(t)
	spec := m.deployment.Spec

	if spec.Replicas == nil {
		t.Error("replicas is unset, want 1 because replicas share one durable consumer")
	} else if *spec.Replicas != 1 {
		t.Errorf("replicas = %d, want 1 because replicas share one durable consumer", *spec.Replicas)
	}
	if spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy = %q, want Recreate so that a rollout never runs two consumers", spec.Strategy.Type)
	}

	budget := m.pdb.Spec
	if budget.MaxUnavailable == nil || *budget.MaxUnavailable != intstr.FromInt32(1) {
		t.Errorf("PodDisruptionBudget maxUnavailable = %v, want 1 so that node drains can evict the only replica", budget.MaxUnavailable)
	}
	if budget.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget minAvailable = %v, want unset", budget.MinAvailable)
	}
}

func TestSelectorsMatchPodLabels(t *testing.T) {
	m := loadBase(t)
	podLabels := m.deployment.Spec.Template.Labels

	if podLabels[appLabelKey] != appLabelValue {
		t.Errorf("pod template label %s = %q, want %q", appLabelKey, podLabels[appLabelKey], appLabelValue)
	}

	selectors := map[string]map[string]string{
		"Deployment":          m.deployment.Spec.Selector.MatchLabels,
		"Service":             m.service.Spec.Selector,
		"PodDisruptionBudget": m.pdb.Spec.Selector.MatchLabels,
	}
	for kind, selector := range selectors {
		if len(selector) == 0 {
			t.Errorf("%s selector is empty", kind)
		}
		for key, value := range selector {
			if podLabels[key] != value {
				t.Errorf("%s selector %s=%s does not match pod label %q", kind, key, value, podLabels[key])
			}
		}
	}
}

func TestProbesAndHTTPAddress(t *testing.T) {
	m := loadBase(t)
	container := workerContainer(t, m.deployment)

	httpPort, ok := containerPort(container, intstr.FromString("http"))
	if !ok {
		t.Fatalf("container %s declares no port named http", container.Name)
	}

	// The worker's default 127.0.0.1:8080 fails the host check below.
	address := loadWorkerConfig(t, m).HTTPAddr
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		t.Fatalf("CONTACT_SYNC_HTTP_ADDR %q: %v", address, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("CONTACT_SYNC_HTTP_ADDR host = %q, want all addresses (empty, 0.0.0.0 or ::) for probes to reach it", host)
	}
	if port != strconv.Itoa(int(httpPort)) {
		t.Errorf("CONTACT_SYNC_HTTP_ADDR port = %s, want the http container port %d", port, httpPort)
	}

	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"livenessProbe", container.LivenessProbe, "/livez"},
		{"readinessProbe", container.ReadinessProbe, "/readyz"},
	}
	for _, tt := range probes {
		if tt.probe == nil || tt.probe.HTTPGet == nil {
			t.Errorf("%s is not an httpGet probe", tt.name)
			continue
		}
		if tt.probe.HTTPGet.Path != tt.path {
			t.Errorf("%s path = %q, want %q", tt.name, tt.probe.HTTPGet.Path, tt.path)
		}
		probePort, ok := containerPort(container, tt.probe.HTTPGet.Port)
		if !ok || probePort != httpPort {
			t.Errorf("%s port %s resolves to %d, want the http port %d", tt.name, tt.probe.HTTPGet.Port.String(), probePort, httpPort)
		}
	}
}

func TestMetricsService(t *testing.T) {
	m := loadBase(t)
	container := workerContainer(t, m.deployment)

	if m.service.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service type = %q, want ClusterIP", m.service.Spec.Type)
	}
	if len(m.service.Spec.Ports) != 1 {
		t.Fatalf("Service has %d ports, want 1", len(m.service.Spec.Ports))
	}

	port := m.service.Spec.Ports[0]
	if port.Name != "http-metrics" || port.Port != 8080 {
		t.Errorf("Service port = %s:%d, want http-metrics:8080", port.Name, port.Port)
	}
	httpPort, _ := containerPort(container, intstr.FromString("http"))
	target, ok := containerPort(container, port.TargetPort)
	if !ok || target != httpPort {
		t.Errorf("Service targetPort %s resolves to %d, want the http container port %d", port.TargetPort.String(), target, httpPort)
	}
}

func TestSecurityContext(t *testing.T) {
	m := loadBase(t)
	pod := m.deployment.Spec.Template.Spec
	container := workerContainer(t, m.deployment)
	podContext := pod.SecurityContext
	if podContext == nil {
		podContext = &corev1.PodSecurityContext{}
	}
	containerContext := container.SecurityContext
	if containerContext == nil {
		t.Fatalf("container %s has no securityContext", container.Name)
	}

	// Fields that exist on both levels take the container value when set,
	// as the kubelet does.
	runAsNonRoot := firstNonNil(containerContext.RunAsNonRoot, podContext.RunAsNonRoot)
	if runAsNonRoot == nil || !*runAsNonRoot {
		t.Error("runAsNonRoot is not true")
	}
	runAsUser := firstNonNil(containerContext.RunAsUser, podContext.RunAsUser)
	if runAsUser == nil {
		t.Errorf("runAsUser is unset, want %d", nonrootUID)
	} else if *runAsUser != nonrootUID {
		t.Errorf("runAsUser = %d, want %d", *runAsUser, nonrootUID)
	}
	seccomp := firstNonNil(containerContext.SeccompProfile, podContext.SeccompProfile)
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile = %v, want RuntimeDefault", seccomp)
	}

	if containerContext.ReadOnlyRootFilesystem == nil || !*containerContext.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if containerContext.AllowPrivilegeEscalation == nil || *containerContext.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if containerContext.Capabilities == nil || !slices.Equal(containerContext.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities = %v, want drop [ALL]", containerContext.Capabilities)
	}
	if containerContext.Capabilities != nil && len(containerContext.Capabilities.Add) > 0 {
		t.Errorf("capabilities add = %v, want none", containerContext.Capabilities.Add)
	}
	if containerContext.Privileged != nil && *containerContext.Privileged {
		t.Error("container is privileged")
	}
}

// firstNonNil returns the first non-nil pointer, or nil.
func firstNonNil[T any](pointers ...*T) *T {
	for _, p := range pointers {
		if p != nil {
			return p
		}
	}
	return nil
}

func TestServiceAccountToken(t *testing.T) {
	m := loadBase(t)
	pod := m.deployment.Spec.Template.Spec

	if pod.ServiceAccountName != m.serviceAccount.Name {
		t.Errorf("serviceAccountName = %q, want the base ServiceAccount %q", pod.ServiceAccountName, m.serviceAccount.Name)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("pod automountServiceAccountToken is not false")
	}
	if m.serviceAccount.AutomountServiceAccountToken == nil || *m.serviceAccount.AutomountServiceAccountToken {
		t.Error("ServiceAccount automountServiceAccountToken is not false")
	}
}

func TestResources(t *testing.T) {
	m := loadBase(t)
	container := workerContainer(t, m.deployment)
	requests := container.Resources.Requests
	limits := container.Resources.Limits

	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		request, ok := requests[name]
		if !ok || request.Sign() <= 0 {
			t.Errorf("%s request is unset", name)
			continue
		}
		if limit, ok := limits[name]; ok && limit.Cmp(request) < 0 {
			t.Errorf("%s limit %s is below the request %s", name, limit.String(), request.String())
		}
	}

	memoryLimit, ok := limits[corev1.ResourceMemory]
	if !ok {
		t.Fatal("memory limit is unset")
	}

	value, ok := podEnvironment(container, m.configMap)["GOMEMLIMIT"]
	if !ok {
		t.Fatal("GOMEMLIMIT is unset")
	}
	softLimit, err := parseGoMemLimit(value)
	if err != nil {
		t.Fatalf("GOMEMLIMIT: %v", err)
	}
	if softLimit >= memoryLimit.Value() {
		t.Errorf("GOMEMLIMIT = %s (%d bytes), want below the memory limit %s (%d bytes)",
			value, softLimit, memoryLimit.String(), memoryLimit.Value())
	}
}

// parseGoMemLimit parses a GOMEMLIMIT value: a byte count with an optional
// suffix B, KiB, MiB, GiB or TiB, as the Go runtime documents. It rejects
// "off" because the manifest must set a limit.
func parseGoMemLimit(value string) (int64, error) {
	units := []struct {
		suffix     string
		multiplier int64
	}{
		{"TiB", 1 << 40},
		{"GiB", 1 << 30},
		{"MiB", 1 << 20},
		{"KiB", 1 << 10},
		{"B", 1},
	}

	number, multiplier := value, int64(1)
	for _, unit := range units {
		if trimmed, ok := strings.CutSuffix(value, unit.suffix); ok {
			number, multiplier = trimmed, unit.multiplier
			break
		}
	}

	count, err := strconv.ParseInt(number, 10, 64)
	if err != nil || count <= 0 {
		return 0, fmt.Errorf("invalid value %q, want a positive byte count with an optional B, KiB, MiB, GiB or TiB suffix", value)
	}
	return count * multiplier, nil
}

func TestAPITokenFromSecretVolume(t *testing.T) {
	m := loadBase(t)
	container := workerContainer(t, m.deployment)

	tokenFile := loadWorkerConfig(t, m).APITokenFile
	if !path.IsAbs(tokenFile) {
		t.Fatalf("CONTACT_SYNC_API_TOKEN_FILE = %q, want an absolute path", tokenFile)
	}
	checkNoTokenInEnvironment(t, m, container)

	// The deepest mount above the file is the one that provides it.
	var mount *corev1.VolumeMount
	for i, candidate := range container.VolumeMounts {
		above := strings.HasPrefix(tokenFile, strings.TrimSuffix(candidate.MountPath, "/")+"/")
		if above && (mount == nil || len(candidate.MountPath) > len(mount.MountPath)) {
			mount = &container.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("no volume is mounted above the token file %s", tokenFile)
	}
	if !mount.ReadOnly {
		t.Errorf("volume mount %s is not readOnly", mount.Name)
	}
	if mount.SubPath != "" || mount.SubPathExpr != "" {
		t.Errorf("volume mount %s uses subPath, which never receives Secret updates", mount.Name)
	}

	volume := findVolume(m.deployment.Spec.Template.Spec.Volumes, mount.Name)
	if volume == nil || volume.Secret == nil {
		t.Fatalf("volume %s is not a Secret volume", mount.Name)
	}
	if volume.Secret.SecretName != m.secret.Name {
		t.Errorf("volume %s mounts Secret %q, want %q", volume.Name, volume.Secret.SecretName, m.secret.Name)
	}

	relative := strings.TrimPrefix(tokenFile, strings.TrimSuffix(mount.MountPath, "/")+"/")
	key := secretKeyForPath(volume.Secret, relative)
	if key == "" {
		t.Fatalf("Secret volume %s has no item at path %s", volume.Name, relative)
	}
	_, inStringData := m.secret.StringData[key]
	_, inData := m.secret.Data[key]
	if !inStringData && !inData {
		t.Errorf("Secret %s has no key %s for the token file", m.secret.Name, key)
	}
}

// checkNoTokenInEnvironment fails the test when the token reaches the
// container as an environment variable, which would pin it until restart.
func checkNoTokenInEnvironment(t *testing.T, m baseManifests, container corev1.Container) {
	t.Helper()

	if _, ok := m.configMap.Data["CONTACT_SYNC_API_TOKEN"]; ok {
		t.Error("ConfigMap sets CONTACT_SYNC_API_TOKEN; the token belongs in the Secret file")
	}
	for _, env := range container.Env {
		if env.Name == "CONTACT_SYNC_API_TOKEN" {
			t.Error("env sets CONTACT_SYNC_API_TOKEN; the token belongs in the Secret file")
		}
		if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil {
			t.Errorf("env %s reads a Secret key; mount the Secret as a file instead", env.Name)
		}
	}
	for _, source := range container.EnvFrom {
		if source.SecretRef != nil {
			t.Errorf("envFrom reads Secret %s; mount the Secret as a file instead", source.SecretRef.Name)
		}
	}
}

func findVolume(volumes []corev1.Volume, name string) *corev1.Volume {
	for i := range volumes {
		if volumes[i].Name == name {
			return &volumes[i]
		}
	}
	return nil
}

// secretKeyForPath returns the Secret key that a Secret volume projects to
// the relative path, or "" when none does. Without items, every key is a
// file named after the key.
func secretKeyForPath(source *corev1.SecretVolumeSource, relative string) string {
	if len(source.Items) == 0 {
		return relative
	}
	for _, item := range source.Items {
		if item.Path == relative {
			return item.Key
		}
	}
	return ""
}

func TestGracePeriodExceedsDrainTimeout(t *testing.T) {
	m := loadBase(t)
	drainTimeout := loadWorkerConfig(t, m).DrainTimeout

	seconds := m.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds
	if seconds == nil {
		t.Fatal("terminationGracePeriodSeconds is unset, and the Kubernetes default of 30s is not tied to the drain timeout")
	}
	gracePeriod := time.Duration(*seconds) * time.Second
	if gracePeriod <= drainTimeout {
		t.Errorf("terminationGracePeriodSeconds = %v, want more than the drain timeout %v", gracePeriod, drainTimeout)
	}
}

func TestConfigMapSettings(t *testing.T) {
	m := loadBase(t)
	container := workerContainer(t, m.deployment)

	referenced := false
	for _, source := range container.EnvFrom {
		if source.ConfigMapRef != nil && source.ConfigMapRef.Name == m.configMap.Name {
			referenced = true
		}
	}
	if !referenced {
		t.Errorf("container envFrom does not reference ConfigMap %s", m.configMap.Name)
	}

	known := map[string]bool{}
	for _, setting := range config.Settings() {
		known[setting.Variable] = true
	}
	for key := range m.configMap.Data {
		if !known[key] {
			t.Errorf("ConfigMap key %s is not a setting of the worker; check its spelling", key)
		}
	}
	for _, env := range container.Env {
		if strings.HasPrefix(env.Name, "CONTACT_SYNC_") && !known[env.Name] {
			t.Errorf("env %s is not a setting of the worker; check its spelling", env.Name)
		}
	}
	if len(m.configMap.BinaryData) > 0 {
		t.Error("ConfigMap has binaryData, which envFrom ignores")
	}

	// The worker's default NATS URL points at 127.0.0.1, where no NATS
	// server runs in the pod.
	if m.configMap.Data["CONTACT_SYNC_NATS_URL"] == "" {
		t.Error("ConfigMap does not set CONTACT_SYNC_NATS_URL")
	}

	loadWorkerConfig(t, m)
}

func TestSecretPlaceholder(t *testing.T) {
	m := loadBase(t)

	if m.secret.Type != corev1.SecretTypeOpaque {
		t.Errorf("Secret type = %q, want Opaque", m.secret.Type)
	}
	if len(m.secret.StringData)+len(m.secret.Data) != 1 {
		t.Errorf("Secret %s has %d keys, want only the API token", m.secret.Name, len(m.secret.StringData)+len(m.secret.Data))
	}
}

// dockerStage is one FROM section of a Dockerfile.
type dockerStage struct {
	from         string // the FROM arguments, such as "golang:1.26 AS build"
	instructions []dockerInstruction
}

// dockerInstruction is one instruction with continuation lines joined.
type dockerInstruction struct {
	keyword   string // upper case, such as RUN
	arguments string
}

// parseDockerfile splits a Dockerfile into stages. It handles comments and
// backslash continuations, which is all that deploy/Dockerfile uses, and not
// heredocs or a changed escape character.
func parseDockerfile(text string) []dockerStage {
	var stages []dockerStage
	var logical strings.Builder

	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || (line == "" && logical.Len() == 0) {
			continue
		}
		if continued, ok := strings.CutSuffix(line, `\`); ok {
			logical.WriteString(continued + " ")
			continue
		}
		logical.WriteString(line)

		keyword, arguments, _ := strings.Cut(strings.TrimSpace(logical.String()), " ")
		logical.Reset()
		keyword = strings.ToUpper(keyword)
		arguments = strings.TrimSpace(arguments)

		if keyword == "FROM" {
			stages = append(stages, dockerStage{from: arguments})
			continue
		}
		if len(stages) > 0 {
			last := &stages[len(stages)-1]
			last.instructions = append(last.instructions, dockerInstruction{keyword, arguments})
		}
	}
	return stages
}

// lastInstruction returns the arguments of the stage's last instruction with
// the keyword, and false when the stage has none.
func (s dockerStage) lastInstruction(keyword string) (string, bool) {
	for _, instruction := range slices.Backward(s.instructions) {
		if instruction.keyword == keyword {
			return instruction.arguments, true
		}
	}
	return "", false
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatalf("read Dockerfile: %v", err)
	}
	stages := parseDockerfile(string(data))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	final := stages[len(stages)-1]

	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static", final.from)
	}
	user, ok := final.lastInstruction("USER")
	if !ok || !slices.Contains([]string{"nonroot", "nonroot:nonroot", "65532", "65532:65532"}, user) {
		t.Errorf("final stage USER = %q, want the distroless nonroot user (65532)", user)
	}

	checkJSONForm(t, final, "ENTRYPOINT", []string{"/contact-sync"})
	checkJSONForm(t, final, "CMD", []string{"run"})

	built := false
	for _, stage := range stages[:len(stages)-1] {
		for _, instruction := range stage.instructions {
			if instruction.keyword != "RUN" || !strings.Contains(instruction.arguments, "go build") {
				continue
			}
			built = true
			if !strings.Contains(instruction.arguments, "CGO_ENABLED=0") {
				t.Errorf("go build runs without CGO_ENABLED=0, so the binary may need libc: %s", instruction.arguments)
			}
			if !strings.Contains(instruction.arguments, "./cmd/contact-sync") {
				t.Errorf("go build does not build ./cmd/contact-sync: %s", instruction.arguments)
			}
		}
	}
	if !built {
		t.Error("no build stage runs go build")
	}
}

// checkJSONForm fails the test unless the stage's last instruction with the
// keyword is the exec (JSON array) form with the expected arguments.
func checkJSONForm(t *testing.T, stage dockerStage, keyword string, expected []string) {
	t.Helper()

	arguments, ok := stage.lastInstruction(keyword)
	if !ok {
		t.Errorf("final stage has no %s", keyword)
		return
	}

	var actual []string
	if err := json.Unmarshal([]byte(arguments), &actual); err != nil {
		t.Errorf("%s %s is not in exec form: %v", keyword, arguments, err)
		return
	}
	if !slices.Equal(actual, expected) {
		t.Errorf("%s = %q, want %q", keyword, actual, expected)
	}
}
