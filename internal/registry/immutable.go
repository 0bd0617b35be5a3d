package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
)

// TagGuard protects immutable tags (package tagrules).
type TagGuard interface {
	// Immutable returns, for each of tags in repo that a rule protects, the rule's
	// description; tags it leaves out are not protected.
	Immutable(ctx context.Context, repo string, tags []string) (map[string]string, error)
}

// immutable asks the guard, if any, which of tags in repo are protected.
func (r *Registry) immutable(ctx context.Context, repo string, tags []string) (map[string]string, error) {
	if r.opts.Tags == nil || len(tags) == 0 {
		return nil, nil
	}
	got, err := r.opts.Tags.Immutable(ctx, repo, tags)
	if err != nil {
		return nil, r.internal(err, "")
	}
	return got, nil
}

// fixedTags lists the protected tags of a push: the put may create them or push the
// same manifest again, never move them (meta.Manifest.FixedTags).
func (r *Registry) fixedTags(ctx context.Context, repo string, tags []string) ([]string, map[string]string, error) {
	rules, err := r.immutable(ctx, repo, tags)
	if err != nil || len(rules) == 0 {
		return nil, nil, err
	}
	fixed := make([]string, 0, len(rules))
	for t := range rules {
		fixed = append(fixed, t)
	}
	slices.Sort(fixed)
	return fixed, rules, nil
}

// immutableRefusal is the client's error for a protected tag.
func immutableRefusal(repo, tag, rule, what string) error {
	return errcode.Denied.New(fmt.Sprintf("tag %s in %s is immutable (%s): it may not be %s; push a new tag instead", tag, repo, rule, what))
}

// movedFixedTag maps the store's refusal to move a protected tag.
func movedFixedTag(err error, repo string, rules map[string]string) error {
	var fixed *meta.FixedTagError
	if !errors.As(err, &fixed) {
		return nil
	}
	return immutableRefusal(repo, fixed.Tag, rules[fixed.Tag], "moved to another manifest")
}

// guardDelete refuses deleting tags of repo that a rule protects.
func (r *Registry) guardDelete(ctx context.Context, repo string, tags []string) error {
	rules, err := r.immutable(ctx, repo, tags)
	if err != nil {
		return err
	}
	for _, t := range tags { // in order, so the refusal names the same tag every time
		if rule, ok := rules[t]; ok {
			return immutableRefusal(repo, t, rule, "deleted")
		}
	}
	return nil
}

// guardDeleteManifest refuses deleting a manifest one of whose tags is protected.
func (r *Registry) guardDeleteManifest(ctx context.Context, repo, digest string) error {
	if r.opts.Tags == nil {
		return nil
	}
	tags, err := r.meta.TagsOf(ctx, repo, digest)
	if err != nil {
		return r.internal(err, "")
	}
	return r.guardDelete(ctx, repo, tags)
}

// guardDeleteRepository refuses deleting a repository holding a protected tag.
func (r *Registry) guardDeleteRepository(ctx context.Context, repo string) error {
	if r.opts.Tags == nil {
		return nil
	}
	const page = 1000
	for last := ""; ; {
		tags, err := r.meta.Tags(ctx, repo, last, page)
		if err != nil {
			return r.internal(err, "")
		}
		if err := r.guardDelete(ctx, repo, tags); err != nil {
			return err
		}
		if len(tags) < page {
			return nil
		}
		last = tags[len(tags)-1]
	}
}
