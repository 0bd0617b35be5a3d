package e2e

import (
	"net/http"
	"testing"
)

// manifestAt answers what GET of the manifest returns at addr: the status and digest.
// Each is asked twice first, so a replica with a read cache has the answer cached.
func manifestAt(t *testing.T, addr, repo, ref string) (int, string) {
	t.Helper()
	var status int
	var digest string
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		status, digest = resp.StatusCode, resp.Header.Get("Docker-Content-Digest")
	}
	return status, digest
}

func deleteAt(t *testing.T, addr, path string) {
	t.Helper()
	if s := httpStatus(t, http.MethodDelete, "http://"+addr+path); s != http.StatusAccepted {
		t.Fatalf("DELETE %s: %d", path, s)
	}
}

// seesWritesAtOnce: writes made through one address are what the other answers right
// after, with no retry: a moved tag, a deleted tag, a deleted manifest (by digest and by
// a tag), a deleted blob.
func seesWritesAtOnce(t *testing.T, writer, reader *Berth) {
	t.Helper()
	const repo = "cache/app"
	d1 := pushImage(t, writer, repo, "latest", []byte("layer one"))
	want := func(ref string, status int, digest string) {
		t.Helper()
		if s, d := manifestAt(t, reader.Addr, repo, ref); s != status || d != digest {
			t.Fatalf("%s:%s at %s = %d %q, want %d %q", repo, ref, reader.Addr, s, d, status, digest)
		}
	}
	want("latest", 200, d1)
	want(d1, 200, d1)

	d2 := pushImage(t, writer, repo, "latest", []byte("layer two"))
	want("latest", 200, d2)

	deleteAt(t, writer.Addr, "/v2/"+repo+"/manifests/latest")
	want("latest", 404, "")
	want(d1, 200, d1) // deleting a tag keeps the manifest

	pushImage(t, writer, repo, "v1", []byte("layer one"))
	want("v1", 200, d1)
	deleteAt(t, writer.Addr, "/v2/"+repo+"/manifests/"+d1)
	want(d1, 404, "")
	want("v1", 404, "")

	layer := pushBlob(t, writer, repo, []byte("a layer of its own"))
	head := "http://" + reader.Addr + "/v2/" + repo + "/blobs/" + layer
	for range 2 {
		if s := httpStatus(t, http.MethodHead, head); s != 200 {
			t.Fatalf("HEAD of a pushed blob: %d", s)
		}
	}
	deleteAt(t, writer.Addr, "/v2/"+repo+"/blobs/"+layer)
	if s := httpStatus(t, http.MethodHead, head); s != 404 {
		t.Fatalf("HEAD of a deleted blob: %d", s)
	}
}

// TestSingleNodeSeesWritesAtOnce: on SQLite (the read cache on, its default), every
// write is reflected by the next read.
func TestSingleNodeSeesWritesAtOnce(t *testing.T) {
	b := startBerth(t, BerthOptions{})
	seesWritesAtOnce(t, b, b)
}

// TestReplicasSeeWritesAtOnce: what replica A wrote, replica B answers at once (issue 12:
// caches must not make tags and deletes lag across replicas).
func TestReplicasSeeWritesAtOnce(t *testing.T) {
	c := startReplicas(t)
	seesWritesAtOnce(t, c.A, c.B)
	seesWritesAtOnce(t, c.B, c.A)
}
