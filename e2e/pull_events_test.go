package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPullEvents: with events.pullSample 1, a manifest pulled with crane reaches an
// artifact.pulled webhook (CloudEvents and Harbor's PULL_ARTIFACT, both schema-checked
// by the receiver); a HEAD is not a pull.
func TestPullEvents(t *testing.T) {
	requireTool(t, "crane")
	env := toolEnv(t)
	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\nevents:\n  pullSample: 1\n  webhooks:\n    backoff: 200ms\n    maxBackoff: 1s\n    allowPrivateTargets: true\n"})
	admOK(t, b, "", "project", "create", "team")
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)
	digest := whPush(t, env, b, "team/app", "v1", 1)

	ce, hb := whNewReceiver(t, "cloudevents", 0), whNewReceiver(t, "harbor", 0)
	var s1, s2 whWebhook
	admJSON(t, b, &s1, "webhook", "create", "pulls", ce.url(), "--events", "artifact.pulled")
	admJSON(t, b, &s2, "webhook", "create", "pulls-harbor", hb.url(), "--project", "team", "--format", "harbor", "--events", "artifact.pulled")
	ce.secret, hb.secret = s1.Secret, s2.Secret

	run(t, env, "crane", "digest", "--insecure", b.Addr+"/team/app:v1") // HEAD: not a pull
	run(t, env, "crane", "manifest", "--insecure", b.Addr+"/team/app:v1")
	got := ce.waitFor(1, time.Minute)
	if c := whParse(got[0]); !strings.HasSuffix(c.Type, "artifact.pulled") || c.Repository != "team/app" || c.Digest != digest {
		t.Fatalf("pull event %+v", c)
	}
	if h := hb.waitFor(1, time.Minute); h[0].body["type"] != "PULL_ARTIFACT" {
		t.Fatalf("Harbor pull event %v", h[0].body)
	}
	time.Sleep(500 * time.Millisecond) // a second event (from the HEAD) would be on its way
	if n := len(ce.waitFor(1, time.Second)); n != 1 {
		t.Fatalf("%d pull events for one GET and one HEAD", n)
	}
}

// TestVerificationEvents: a pull refused by a signature policy is a verification.failed
// event naming the policy; the same refusal again within ten minutes is not another.
func TestVerificationEvents(t *testing.T) {
	requireTool(t, "crane")
	env := toolEnv(t)
	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\nevents:\n  webhooks:\n    backoff: 200ms\n    maxBackoff: 1s\n    allowPrivateTargets: true\n"})
	admOK(t, b, "", "project", "create", "team")
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)
	digest := whPush(t, env, b, "team/app", "v1", 2)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	admOK(t, b, "", "policy", "set", "signed", "--project", "team", "--cosign-key", pub)
	hook := whNewReceiver(t, "cloudevents", 0)
	var sub whWebhook
	admJSON(t, b, &sub, "webhook", "create", "verify", hook.url(), "--events", "verification.failed")
	hook.secret = sub.Secret
	for range 2 {
		if out, err := runErr(env, "crane", "manifest", "--insecure", b.Addr+"/team/app:v1"); err == nil || !strings.Contains(out, "DENIED") {
			t.Fatalf("pull of an unsigned image under an enforced policy: %v\n%s", err, out)
		}
	}
	got := hook.waitFor(1, time.Minute)
	c := whParse(got[0])
	data, _ := got[0].body["data"].(map[string]any)
	detail, _ := data["data"].(map[string]any)
	if !strings.HasSuffix(c.Type, "verification.failed") || c.Repository != "team/app" || c.Digest != digest || detail["policy"] != "signed" || detail["result"] != "denied" {
		t.Fatalf("verification event %+v %v", c, detail)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(hook.waitFor(1, time.Second)); n != 1 {
		t.Fatalf("%d verification events for two refusals of one image", n)
	}
}
