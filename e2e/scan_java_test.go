package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/scan/trivydbtest"
)

// scJar is a JAR with no Maven metadata and a name that says nothing: only Trivy's Java
// database (by SHA-1) can tell what it is.
func scJar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range map[string]string{"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\n\r\n", "org/example/Lib.class": "\xca\xfe\xba\xbe berth"} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestScanJava: an image holding a JAR scans (with an empty Java database while none is
// in the registry: Trivy would otherwise refuse to run offline); once trivy-java-db is
// pushed into berth, a scan identifies the JAR by its SHA-1 and reports the Maven
// advisory; berth admin scan db names the Java database.
func TestScanJava(t *testing.T) {
	requireTool(t, "crane")
	requireTool(t, "oras")
	trivy := requireTool(t, "trivy")
	env := toolEnv(t)
	work := t.TempDir()
	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\nscan:\n  enabled: true\n  dbCheckInterval: 1s\n  trivy:\n    path: " + trivy + "\n"})
	admOK(t, b, "", "project", "create", "aquasecurity")
	admOK(t, b, "", "project", "create", "team")
	now := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	scPushDB(t, env, b, scBuildTrivyDB(t, filepath.Join(work, "db"), now, []scAdvisory{
		{ID: "GHSA-berth-java-0001", Severity: "HIGH", Title: "vuln-lib deserialisation", Maven: "org.example:vuln-lib", Patched: []string{"1.0.1"}}}))
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)
	admOK(t, b, "", "scan", "policy", "set", "team", "--scan-on-push")

	jar := scJar(t)
	layer := filepath.Join(work, "layer.tar.gz")
	files := trivydbtest.AlpineFiles(nil)
	files["opt/app/lib/app.jar"] = string(jar)
	scTarGz(t, layer, nil, files)
	out := strings.TrimSpace(run(t, env, "crane", "append", "--insecure", "-f", layer, "-t", b.Addr+"/team/java:1"))
	_, digest, _ := strings.Cut(out[strings.LastIndexByte(out, '\n')+1:], "@")

	if r := scWaitReport(t, b, "team/java@"+digest, time.Time{}); len(r.Findings) != 0 {
		t.Fatalf("without a Java database the JAR cannot be identified, yet: %v", r.ids())
	}
	if out := admOK(t, b, "", "scan", "db"); !strings.Contains(out, "an empty Java database") {
		t.Errorf("scan db before trivy-java-db is pushed: %s", out)
	}

	sum := sha1.Sum(jar)
	javaDB, err := trivydbtest.BuildJavaDB(filepath.Join(work, "javadb"), now, []trivydbtest.JavaJar{
		{GroupID: "org.example", ArtifactID: "vuln-lib", Version: "1.0.0", SHA1: sum[:]}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runErrIn(filepath.Dir(javaDB), env, "oras", "push", "--plain-http", "-u", "admin", "-p", admPassword,
		"--artifact-type", trivydbtest.ArtifactType, b.Addr+"/aquasecurity/trivy-java-db:1",
		filepath.Base(javaDB)+":"+trivydbtest.JavaLayerType); err != nil {
		t.Fatalf("oras push of the Java database: %v\n%s", err, out)
	}
	deadline := time.Now().Add(time.Minute)
	for out := admOK(t, b, "", "scan", "db"); !strings.Contains(out, "Java database sha256:"); out = admOK(t, b, "", "scan", "db") {
		if time.Now().After(deadline) {
			t.Fatalf("the pushed Java database was not loaded: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	before := scWaitReport(t, b, "team/java@"+digest, time.Time{})
	admOK(t, b, "", "scan", "run", "team/java@"+digest)
	want := []string{"HIGH GHSA-berth-java-0001 org.example:vuln-lib 1.0.0->1.0.1"}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		r := scWaitReport(t, b, "team/java@"+digest, time.Time{})
		if slices.Equal(r.ids(), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the Java database: findings %v (report before %v), want %v", r.ids(), before.ids(), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
