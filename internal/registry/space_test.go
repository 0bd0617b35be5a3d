package registry_test

import (
	"context"
	"io"
	"io/fs"
	"syscall"
	"testing"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/registry"
)

// fakeSpace is a SpaceGuard driven by the test: refuse turns pressure on; failAfter,
// when positive, makes the store fail with ENOSPC after that many bytes.
type fakeSpace struct {
	refuse     bool
	failAfter  int64
	remeasured int
}

func (f *fakeSpace) Admit() error {
	if f.refuse {
		return errcode.StorageFull.New("storage pressure: test")
	}
	return nil
}

func (f *fakeSpace) Writer(w io.Writer) io.Writer { return &enospcWriter{w: w, left: f.failAfter} }

func (f *fakeSpace) Pressured(context.Context) bool { return f.refuse }

func (f *fakeSpace) Remeasure() { f.remeasured++ }

type enospcWriter struct {
	w    io.Writer
	left int64
}

func (e *enospcWriter) Write(p []byte) (int, error) {
	if e.left <= 0 {
		return e.w.Write(p)
	}
	if int64(len(p)) > e.left {
		n, _ := e.w.Write(p[:e.left])
		e.left = -1
		return n, &fs.PathError{Op: "write", Path: "upload", Err: syscall.ENOSPC}
	}
	e.left -= int64(len(p))
	return e.w.Write(p)
}

func TestStoragePressure(t *testing.T) {
	config, layer := []byte(`{"os":"linux"}`), []byte("layer bytes")
	stored := marshal(t, image(t, config, layer))
	fresh := marshal(t, image(t, config))
	for _, tc := range []struct {
		name string
		// op runs under pressure; refused tells whether it must be refused.
		op      func(r *registry.Registry) error
		refused bool
	}{
		{"blob upload", func(r *registry.Registry) error {
			_, err := r.PutBlob(t.Context(), "app", sha256Of([]byte("new")), body([]byte("new")))
			return err
		}, true},
		{"new manifest", func(r *registry.Registry) error {
			_, err := r.PutManifest(t.Context(), "app", tag("fresh"), "", fresh, nil)
			return err
		}, true},
		{"re-tag a stored manifest", func(r *registry.Registry) error {
			_, err := r.PutManifest(t.Context(), "app", tag("again"), "", stored, nil)
			return err
		}, false},
		{"pull", func(r *registry.Registry) error {
			b, err := r.OpenBlob(t.Context(), "app", sha256Of(layer))
			if err == nil {
				b.Close()
			}
			return err
		}, false},
		{"delete", func(r *registry.Registry) error {
			return r.DeleteManifest(t.Context(), "app", tag("v1"))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			space := &fakeSpace{}
			e := newRegEnv(t, registry.Options{Space: space})
			pushBlob(t, e.reg, "app", config)
			pushBlob(t, e.reg, "app", layer)
			putManifest(t, e.reg, "app", tag("v1"), stored)
			space.refuse = true
			err := tc.op(e.reg)
			if tc.refused {
				wantCode(t, tc.name, err, errcode.StorageFull)
			} else if err != nil {
				t.Fatalf("%s under pressure: %v", tc.name, err)
			}
		})
	}
}

// A blob write that fails for lack of space answers StorageFull (never UNKNOWN) and
// leaves no bytes behind.
func TestENOSPCReleasesUpload(t *testing.T) {
	space := &fakeSpace{failAfter: 10}
	e := newRegEnv(t, registry.Options{Space: space})
	content := make([]byte, 100)
	_, err := e.reg.PutBlob(t.Context(), "app", sha256Of(content), body(content))
	wantCode(t, "PutBlob on a full disk", err, errcode.StorageFull)
	e.noUploadFiles()
	if space.remeasured == 0 {
		t.Fatal("the guard was not told to measure again")
	}
}
