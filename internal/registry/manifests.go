package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

// Reference is a parsed manifest reference: a tag or a digest.
type Reference struct {
	Tag    string
	Digest oci.Digest
}

func (r Reference) String() string {
	if r.Digest != "" {
		return string(r.Digest)
	}
	return r.Tag
}

// ParseReference validates a tag or digest from a manifest path.
func ParseReference(s string) (Reference, error) {
	if oci.IsDigestLike(s) {
		d, err := oci.ParseDigest(s)
		if err != nil {
			return Reference{}, errcode.DigestInvalid.Wrap(err, err.Error())
		}
		return Reference{Digest: d}, nil
	}
	if err := oci.ValidateTag(s); err != nil {
		return Reference{}, errcode.ReferenceInvalid.Wrap(err, err.Error())
	}
	return Reference{Tag: s}, nil
}

// PutResult is what a manifest push produced.
type PutResult struct {
	Digest  oci.Digest
	Subject oci.Digest // set when the manifest has a subject
	Tags    []string   // tags now pointing at it
}

// PutManifest validates and stores a manifest under ref, plus any extra tags (the
// ?tag= parameters of a push by digest).
func (r *Registry) PutManifest(ctx context.Context, repo string, ref Reference, contentType string, payload []byte, extraTags []string) (PutResult, error) {
	return r.putManifest(ctx, repo, ref, contentType, payload, extraTags, !r.opts.AllowSparseManifests)
}

// PutManifestUnchecked stores a manifest without requiring its blobs and children to be
// present: a mirror caches manifests first and fetches only the content clients ask for.
func (r *Registry) PutManifestUnchecked(ctx context.Context, repo string, ref Reference, contentType string, payload []byte, tags []string) (PutResult, error) {
	return r.putManifest(ctx, repo, ref, contentType, payload, tags, false)
}

func (r *Registry) putManifest(ctx context.Context, repo string, ref Reference, contentType string, payload []byte, extraTags []string, checkRefs bool) (PutResult, error) {
	alg := oci.SHA256
	if ref.Digest != "" {
		alg = ref.Digest.Algorithm()
	}
	dgst := alg.FromBytes(payload)
	if ref.Digest != "" && dgst != ref.Digest {
		return PutResult{}, errcode.DigestInvalid.WithDetail(map[string]string{"expected": string(ref.Digest), "computed": string(dgst)})
	}
	m, err := oci.ParseManifest(contentType, payload)
	if err != nil {
		return PutResult{}, errcode.ManifestInvalid.Wrap(err, err.Error())
	}
	var tags []string
	if ref.Tag != "" {
		tags = append(tags, ref.Tag)
	}
	for _, t := range extraTags {
		if err := oci.ValidateTag(t); err != nil {
			return PutResult{}, errcode.ReferenceInvalid.Wrap(err, err.Error())
		}
		tags = append(tags, t)
	}

	var blobs, children []string
	var mustExist []string
	for _, d := range m.BlobReferences() {
		blobs = append(blobs, string(d.Digest))
		// Non-distributable layers live elsewhere (urls); the registry need not hold them.
		if len(d.URLs) == 0 {
			mustExist = append(mustExist, string(d.Digest))
		}
	}
	for _, d := range m.Manifests {
		children = append(children, string(d.Digest))
	}
	if checkRefs {
		if err := r.checkReferences(ctx, repo, mustExist, children); err != nil {
			return PutResult{}, err
		}
	}
	rec := meta.Manifest{
		Repository:   repo,
		Digest:       string(dgst),
		MediaType:    m.MediaType,
		ArtifactType: m.ArtifactType,
		Annotations:  m.Annotations,
		Payload:      payload,
		Blobs:        blobs,
		Children:     children,
	}
	if checkRefs {
		// Checked again, and locked, in the put's transaction: a collector running
		// meanwhile cannot take them away from an acknowledged manifest.
		rec.RequireBlobs, rec.RequireChildren = mustExist, true
	}
	res := PutResult{Digest: dgst, Tags: tags}
	if m.Subject != nil {
		rec.Subject = string(m.Subject.Digest)
		res.Subject = m.Subject.Digest
	}
	var rules map[string]string
	if checkRefs { // a mirror's tags follow its upstream
		var err error
		if rec.FixedTags, rules, err = r.fixedTags(ctx, repo, tags); err != nil {
			return PutResult{}, err
		}
	}
	if checkRefs { // a mirror's cache fill is a read for its clients
		if err := r.admitManifest(ctx, repo, dgst); err != nil {
			return PutResult{}, err
		}
	}
	if err := r.meta.PutManifest(ctx, rec, tags); err != nil {
		var missing *meta.MissingError
		if errors.As(err, &missing) {
			return PutResult{}, missingReferences(repo, missing.Digests)
		}
		if refusal := movedFixedTag(err, repo, rules); refusal != nil {
			return PutResult{}, refusal
		}
		return PutResult{}, r.internal(err, "")
	}
	return res, nil
}

func (r *Registry) checkReferences(ctx context.Context, repo string, blobs, manifests []string) error {
	missingBlobs, err := r.meta.MissingBlobs(ctx, repo, blobs)
	if err != nil {
		return r.internal(err, "")
	}
	missingManifests, err := r.meta.MissingManifests(ctx, repo, manifests)
	if err != nil {
		return r.internal(err, "")
	}
	if missing := append(missingBlobs, missingManifests...); len(missing) > 0 {
		return missingReferences(repo, missing)
	}
	return nil
}

func missingReferences(repo string, missing []string) error {
	e := errcode.ManifestBlobUnknown.WithDetail(map[string]any{"missing": missing})
	e.Message = fmt.Sprintf("manifest references %d blob(s) or manifest(s) not in repository %s, first %s", len(missing), repo, missing[0])
	return e
}

// GetManifest returns the manifest ref names in repo; withPayload false skips the bytes.
func (r *Registry) GetManifest(ctx context.Context, repo string, ref Reference, withPayload bool) (meta.Manifest, error) {
	m, err := r.meta.GetManifest(ctx, repo, ref.String(), ref.Digest != "", withPayload)
	if errors.Is(err, meta.ErrNotFound) {
		return meta.Manifest{}, r.notFound(ctx, repo, errcode.ManifestUnknown)
	}
	if err != nil {
		return meta.Manifest{}, r.internal(err, "")
	}
	return m, nil
}

// DeleteManifest deletes a manifest (by digest, with its tags) or just a tag.
func (r *Registry) DeleteManifest(ctx context.Context, repo string, ref Reference) error {
	var err error
	if ref.Digest != "" {
		if err := r.guardDeleteManifest(ctx, repo, string(ref.Digest)); err != nil {
			return err
		}
		err = r.meta.DeleteManifest(ctx, repo, string(ref.Digest))
	} else {
		if err := r.guardDelete(ctx, repo, []string{ref.Tag}); err != nil {
			return err
		}
		err = r.meta.DeleteTag(ctx, repo, ref.Tag)
	}
	if errors.Is(err, meta.ErrNotFound) {
		return r.notFound(ctx, repo, errcode.ManifestUnknown)
	}
	if err != nil {
		return r.internal(err, "")
	}
	return nil
}

// Referrers lists manifests in repo whose subject is dgst, optionally of one artifact type.
func (r *Registry) Referrers(ctx context.Context, repo string, dgst oci.Digest, artifactType string) ([]oci.Descriptor, error) {
	rows, err := r.meta.Referrers(ctx, repo, string(dgst), artifactType)
	if err != nil {
		return nil, r.internal(err, "")
	}
	descs := make([]oci.Descriptor, len(rows))
	for i, m := range rows {
		descs[i] = oci.Descriptor{MediaType: m.MediaType, Digest: oci.Digest(m.Digest), Size: m.Size,
			ArtifactType: m.ArtifactType, Annotations: m.Annotations}
	}
	return descs, nil
}

// TouchTag restarts a tag's freshness period when it still points at digest.
func (r *Registry) TouchTag(ctx context.Context, repo, tag, digest string) (bool, error) {
	ok, err := r.meta.TouchTag(ctx, repo, tag, digest)
	if err != nil {
		return false, r.internal(err, "")
	}
	return ok, nil
}
