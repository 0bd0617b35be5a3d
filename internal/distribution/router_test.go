package distribution

import "testing"

func TestParseRoute(t *testing.T) {
	tests := []struct {
		path string
		want route
		ok   bool
	}{
		{"/v2/", route{kind: routePing}, true},
		{"/v2", route{kind: routePing}, true},
		{"/v2/_catalog", route{kind: routeCatalog}, true},
		{"/v2/a/tags/list", route{kind: routeTags, name: "a"}, true},
		{"/v2/team/app/tags/list", route{kind: routeTags, name: "team/app"}, true},
		{"/v2/team/app/manifests/latest", route{kind: routeManifest, name: "team/app", ref: "latest"}, true},
		{"/v2/a/manifests/manifests/v1", route{kind: routeManifest, name: "a/manifests", ref: "v1"}, true},
		{"/v2/a/blobs/sha256:abc", route{kind: routeBlob, name: "a", ref: "sha256:abc"}, true},
		{"/v2/a/b/blobs/uploads/", route{kind: routeUpload, name: "a/b"}, true},
		{"/v2/a/b/blobs/uploads", route{kind: routeUpload, name: "a/b"}, true},
		{"/v2/a/b/blobs/uploads/0123", route{kind: routeUpload, name: "a/b", ref: "0123"}, true},
		{"/v2/blobs/uploads/blobs/uploads/x", route{kind: routeUpload, name: "blobs/uploads", ref: "x"}, true},
		{"/v2/a/referrers/sha256:abc", route{kind: routeReferrers, name: "a", ref: "sha256:abc"}, true},
		{"/v2/a/manifests/", route{}, false},
		{"/v2//blobs/uploads", route{}, false},
		{"/v2//tags/list", route{}, false},
		{"/v2//blobs/uploads/", route{}, false},
		{"/v2/a/other/x", route{}, false},
		{"/v2/manifests/x", route{}, false},
		{"/x", route{}, false},
	}
	for _, tt := range tests {
		got, ok := parseRoute(tt.path)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseRoute(%q) = %+v, %v; want %+v, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/a/b/manifests/x", "/v2/a/blobs/uploads/", "/v2//manifests/x", "/v2/a/tags/list"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt, ok := parseRoute(path)
		if !ok {
			return
		}
		switch rt.kind {
		case routeManifest, routeBlob, routeReferrers:
			if rt.ref == "" || rt.name == "" {
				t.Fatalf("parseRoute(%q) = %+v: empty name or reference", path, rt)
			}
		case routeTags, routeUpload:
			if rt.name == "" {
				t.Fatalf("parseRoute(%q) = %+v: empty name", path, rt)
			}
		}
	})
}
