package blobstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/opencontainers/go-digest"
)

// ErrUnavailable reports that the storage service could not be reached or failed on its
// side (connection refused, timeout, HTTP 5xx): transient, worth a 503 and a retry.
var ErrUnavailable = errors.New("blobstore: storage service unavailable")

// ErrBucketMissing reports that the configured bucket does not exist and the store was
// not allowed to create it.
var ErrBucketMissing = errors.New("blobstore: bucket does not exist")

const (
	// S3MinPartSize is S3's minimum size of every part of a multipart upload but the
	// last. S3-compatible fakes often do not enforce it; this driver always does.
	S3MinPartSize = 5 << 20
	// S3MaxPartSize is S3's maximum part size.
	S3MaxPartSize = 5 << 30
	// S3DefaultPartSize is the part size when none is configured: 10,000 parts (S3's
	// limit) of 8 MiB make blobs of up to 78 GiB.
	S3DefaultPartSize = 8 << 20

	s3MaxParts = 10000
	// s3OpTimeout bounds one S3 request made on behalf of an upload (a part is at most
	// partSize bytes).
	s3OpTimeout = 5 * time.Minute
	// s3DrainLimit: a GET body with at most this much left is read to its end before it is
	// closed, so its connection is reused rather than torn down.
	s3DrainLimit = 256 << 10
)

// S3Options configure an S3 store.
type S3Options struct {
	// Endpoint is the service URL (http(s)://host[:port]); empty means AWS S3.
	Endpoint string
	// Region; empty takes it from the AWS environment or shared config, else us-east-1.
	Region string
	Bucket string
	// Prefix is prepended to every key ("team/berth" → team/berth/blobs/…).
	Prefix string
	// ForcePathStyle addresses http://host/bucket/key instead of http://bucket.host/key.
	ForcePathStyle bool
	// AccessKey and SecretKey are static credentials; when empty, the AWS SDK's default
	// chain applies (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared
	// credentials file, web identity, ECS/EC2 roles).
	AccessKey, SecretKey string
	// CAFile is a PEM bundle trusted in addition to the system roots; Insecure skips TLS
	// verification (testing only).
	CAFile   string
	Insecure bool
	// CreateBucket creates the bucket at start when it does not exist.
	CreateBucket bool
	// PartSize is the multipart part size (default S3DefaultPartSize, at least
	// S3MinPartSize). Each open upload buffers at most one part in memory.
	PartSize int64
}

// S3 stores blobs in an S3-compatible bucket, under the prefix:
//
//	blobs/<hh>/<handle>            a blob: the key its upload was written to (hh = handle[:2])
//	uploads/<handle>               marker: the upload session exists (written at its first Sync/Close)
//	uploads/<handle>.tail-<rand>   a tail segment: acknowledged bytes that do not fill a part yet
//
// An upload streams into an S3 multipart upload at the blob's final key, created at the
// first full part; Commit completes it there, so a committed blob is never copied. The
// location is that key relative to the prefix (blobs/<hh>/<handle>); the registry records
// digest → location in the database, and a second upload of an existing digest is simply
// aborted, so the bucket holds exactly one object per stored blob.
//
// Sessions are shared by replicas through their State (JSON, recorded by the registry
// with the acknowledged size in the same database update):
//
//	{"uploadId":…, "parts":[{"n":1,"etag":…,"size":…}…], "tail":[{"key":…,"size":…}…], "stale":[…]}
//
// Write fills a buffer of one part (PartSize; never below S3's 5 MiB minimum, except the
// last part) and uploads it as the next part number. Sync stores the bytes that do not
// fill a part as a new tail segment object under a fresh random name; trailing segments
// not larger than the new bytes are folded into it, so segment sizes at least double
// towards the front: a session has few segments and a byte is rewritten O(log) times
// however small its chunks. When the segments and new bytes fill a part, they are read
// back and uploaded as that part; the segments become "stale" and are deleted by the
// next writer that rewinds to the state recording them (that state supersedes them for
// good), or by Commit/AbortUpload.
//
// No lock: OpenUpload grants the hold to everyone, as the Driver contract allows. A
// writer only ever creates objects under new random names (tails) and parts numbered
// after those of the state it rewound to, and the registry's compare-and-swap on the
// recorded size decides which writer's State is kept; objects of the others are never
// referenced. Two overlaps remain, both only between writers racing on one session
// (which clients do not do: the distribution spec orders chunks). (1) Writers racing from
// a state that already has a multipart upload (without one, each creates its own) upload
// the same part number, and the loser's part replaces the winner's. Commit lists the
// recorded ETags in CompleteMultipartUpload, which S3 checks, so the commit then fails
// with ErrUploadCorrupt (start the upload again) and a blob never holds other bytes than
// those hashed. (2) A writer still working from an older state may find the tails it
// needs deleted as stale by a newer one; its request fails, as its compare-and-swap would.
//
// Crash leftovers: multipart uploads, markers and tails of sessions no row knows are
// reported by UploadsIdleSince and removed by AbortUpload. A blob object completed by a
// commit whose database row was never written (a crash in between) is not an upload any
// more; garbage collection, which compares blobs/ with the database, removes it.
type S3 struct {
	client   *s3.Client
	presign  *s3.PresignClient
	bucket   string
	prefix   string // "" or ending in "/"
	endpoint string // for messages
	partSize int64
	bufs     sync.Pool // *[]byte of cap partSize
	// bodyOpts are the options of requests carrying blob bytes: over TLS the payload is
	// sent unsigned (TLS protects it in transit), which spares SigV4 a second SHA-256
	// pass over every byte the registry already hashes; over plain HTTP the signature
	// is all that protects it, so it stays signed.
	bodyOpts []func(*s3.Options)
}

// NewS3 connects to the bucket and checks that it exists (creating it when allowed).
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	if o.Bucket == "" {
		return nil, errors.New("blobstore: s3: no bucket configured")
	}
	partSize := o.PartSize
	if partSize == 0 {
		partSize = S3DefaultPartSize
	}
	if partSize < S3MinPartSize || partSize > S3MaxPartSize {
		return nil, fmt.Errorf("blobstore: s3: part size %d outside S3's limits [%d, %d]", partSize, S3MinPartSize, S3MaxPartSize)
	}
	prefix := strings.Trim(o.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	var tlsConf *tls.Config
	if o.CAFile != "" || o.Insecure {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure} //nolint:gosec // opt-in, testing only
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("blobstore: s3: CA file: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("blobstore: s3: CA file %s holds no PEM certificate", o.CAFile)
			}
			tlsConf.RootCAs = pool
		}
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = 512
		tr.MaxIdleConnsPerHost = 256
		if tlsConf != nil {
			tr.TLSClientConfig = tlsConf
		}
	})
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(httpClient),
		// Checksums only where S3 requires them: the SDK's default CRC trailers and
		// per-part checksums are not understood by every S3-compatible server, and ranged
		// GETs cannot be validated anyway. SigV4 signs the payload hash of every part.
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// Retry transient failures, but without the client-side retry quota: after an
		// outage it would keep failing requests to a recovered server.
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) { so.RateLimiter = ratelimit.None })
		}),
	}
	if o.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Region))
	}
	if o.AccessKey != "" || o.SecretKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("blobstore: s3: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.ForcePathStyle
	})
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = "AWS S3 (" + cfg.Region + ")"
	}
	d := &S3{
		client:   client,
		presign:  s3.NewPresignClient(client),
		bucket:   o.Bucket,
		prefix:   prefix,
		endpoint: endpoint,
		partSize: partSize,
	}
	if o.Endpoint == "" || strings.HasPrefix(strings.ToLower(o.Endpoint), "https://") {
		d.bodyOpts = []func(*s3.Options){s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)}
	}
	d.bufs.New = func() any { b := make([]byte, 0, partSize); return &b }
	if err := d.checkBucket(ctx, o.CreateBucket, cfg.Region); err != nil {
		return nil, err
	}
	return d, nil
}

// checkBucket makes sure the bucket exists and is reachable with our credentials.
func (d *S3) checkBucket(ctx context.Context, create bool, region string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := d.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &d.bucket})
	if err == nil {
		return nil
	}
	switch status := httpStatus(err); {
	case status == http.StatusNotFound || apiCode(err) == "NoSuchBucket":
		if !create {
			return fmt.Errorf("%w: bucket %q at %s", ErrBucketMissing, d.bucket, d.endpoint)
		}
		in := &s3.CreateBucketInput{Bucket: &d.bucket}
		if region != "us-east-1" {
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
		}
		if _, err := d.client.CreateBucket(ctx, in); err != nil && apiCode(err) != "BucketAlreadyOwnedByYou" {
			return s3Err(fmt.Sprintf("create bucket %q at %s", d.bucket, d.endpoint), err)
		}
		return nil
	case status == http.StatusForbidden:
		return fmt.Errorf("blobstore: s3: access to bucket %q at %s denied: check the credentials and the bucket policy: %w", d.bucket, d.endpoint, err)
	case status == http.StatusMovedPermanently:
		return fmt.Errorf("blobstore: s3: bucket %q is in another region than %q: %w", d.bucket, region, err)
	default:
		return s3Err(fmt.Sprintf("check bucket %q at %s", d.bucket, d.endpoint), err)
	}
}

// Ping reports whether the bucket is reachable (for readiness checks).
func (d *S3) Ping(ctx context.Context) error {
	_, err := d.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &d.bucket})
	return s3Err("head bucket", err)
}

// ---------------------------------------------------------------- keys

func isHandle(h string) bool {
	return len(h) == 32 && strings.Trim(h, "0123456789abcdef") == ""
}

func newHandle() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// blobLocation is the location (key relative to the prefix) an upload is written to.
func blobLocation(handle string) string { return "blobs/" + handle[:2] + "/" + handle }

func markerKey(handle string) string { return "uploads/" + handle }

const tailInfix = ".tail-"

func isTailKey(handle, key string) bool {
	rest, ok := strings.CutPrefix(key, "uploads/"+handle+tailInfix)
	return ok && len(rest) == 16 && strings.Trim(rest, "0123456789abcdef") == ""
}

// handleOfLocation returns the handle of a location Commit produced, or "".
func handleOfLocation(location string) string {
	rest, ok := strings.CutPrefix(location, "blobs/")
	if !ok || len(rest) != 35 || rest[2] != '/' || !isHandle(rest[3:]) || rest[:2] != rest[3:5] {
		return ""
	}
	return rest[3:]
}

func (d *S3) blobKey(location string) (string, error) {
	// Locations come from the database; refuse anything Commit never produces, so a
	// corrupted row can never name an upload's objects or another prefix.
	if handleOfLocation(location) == "" {
		return "", fmt.Errorf("%w: location %q", ErrNotFound, location)
	}
	return d.prefix + location, nil
}

// ---------------------------------------------------------------- errors

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNoSuchKey(err error) bool {
	c := apiCode(err)
	return c == "NoSuchKey" || c == "NotFound" || (httpStatus(err) == http.StatusNotFound && c != "NoSuchBucket" && c != "NoSuchUpload")
}

func isUnavailable(err error) bool {
	var send *smithyhttp.RequestSendError
	var ne net.Error
	switch {
	case errors.As(err, &send), errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return true
	case httpStatus(err) >= 500:
		return true
	}
	switch apiCode(err) {
	case "SlowDown", "ServiceUnavailable", "RequestTimeout", "InternalError":
		return true
	}
	return false
}

// s3Err wraps an SDK error, marking transient ones ErrUnavailable.
func s3Err(op string, err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) {
		return fmt.Errorf("blobstore: s3 %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("blobstore: s3 %s: %w", op, err)
}

// ---------------------------------------------------------------- driver

// NewUpload implements Driver. Nothing is stored until the first full part or Sync.
func (d *S3) NewUpload(ctx context.Context) (Upload, error) {
	handle, err := newHandle()
	if err != nil {
		return nil, err
	}
	return d.upload(ctx, handle, false), nil
}

func (d *S3) upload(ctx context.Context, handle string, opened bool) *s3Upload {
	return &s3Upload{
		d:       d,
		ctx:     context.WithoutCancel(ctx),
		handle:  handle,
		key:     d.prefix + blobLocation(handle),
		marked:  opened,
		rewound: !opened,
	}
}

// OpenUpload implements Driver. Every caller gets the hold (see S3); the session's bytes
// are known once Rewind has been given its state.
func (d *S3) OpenUpload(ctx context.Context, handle string) (Upload, error) {
	if !isHandle(handle) {
		return nil, fmt.Errorf("%w: upload handle %q", ErrNotFound, handle)
	}
	_, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: aws.String(d.prefix + markerKey(handle))})
	if isNoSuchKey(err) {
		return nil, fmt.Errorf("%w: upload %s", ErrNotFound, handle)
	}
	if err != nil {
		return nil, s3Err("open upload", err)
	}
	return d.upload(ctx, handle, true), nil
}

// ResumeUpload implements Driver.
func (d *S3) ResumeUpload(ctx context.Context, handle string, state []byte, offset int64) (Upload, error) {
	up, err := d.OpenUpload(ctx, handle)
	if err != nil {
		return nil, err
	}
	if err := up.Rewind(offset, state); err != nil {
		up.Close()
		return nil, err
	}
	return up, nil
}

// AbortUpload implements Driver: it aborts the session's multipart uploads and deletes its
// tails and marker. A committed blob is left alone.
func (d *S3) AbortUpload(ctx context.Context, handle string) error {
	if !isHandle(handle) {
		return nil
	}
	key := d.prefix + blobLocation(handle)
	mp := s3.NewListMultipartUploadsPaginator(d.client, &s3.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: &key})
	for mp.HasMorePages() {
		page, err := mp.NextPage(ctx)
		if err != nil {
			return s3Err("list multipart uploads", err)
		}
		for _, u := range page.Uploads {
			if aws.ToString(u.Key) != key {
				continue
			}
			_, err := d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: u.UploadId})
			if err != nil && apiCode(err) != "NoSuchUpload" {
				return s3Err("abort multipart upload", err)
			}
		}
	}
	return d.deleteSessionObjects(ctx, handle)
}

// deleteSessionObjects deletes the tails, then the marker, of a session.
func (d *S3) deleteSessionObjects(ctx context.Context, handle string) error {
	keys, err := d.list(ctx, d.prefix+markerKey(handle))
	if err != nil {
		return err
	}
	marker := d.prefix + markerKey(handle)
	// The marker goes last: until it is gone, the session is still found.
	slices.SortFunc(keys, func(a, b string) int {
		if a == marker {
			return 1
		}
		if b == marker {
			return -1
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		if k != marker && !isTailKey(handle, strings.TrimPrefix(k, d.prefix)) {
			continue
		}
		if err := d.deleteKey(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

func (d *S3) list(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(d.client, &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s3Err("list objects", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

func (d *S3) deleteKey(ctx context.Context, key string) error {
	_, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.bucket, Key: &key})
	if err != nil && !isNoSuchKey(err) {
		return s3Err("delete object", err)
	}
	return nil
}

// Open implements Driver.
func (d *S3) Open(ctx context.Context, location string) (Blob, error) {
	key, err := d.blobKey(location)
	if err != nil {
		return nil, err
	}
	head, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &key})
	if isNoSuchKey(err) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, location)
	}
	if err != nil {
		return nil, s3Err("open blob", err)
	}
	return &s3Blob{d: d, ctx: ctx, key: key, size: aws.ToInt64(head.ContentLength)}, nil
}

// Delete implements Driver.
func (d *S3) Delete(ctx context.Context, location string) error {
	key, err := d.blobKey(location)
	if err != nil {
		return err
	}
	return d.deleteKey(ctx, key)
}

// PresignGet returns a URL that lets its holder GET the blob at location for ttl,
// for redirecting blob downloads to the storage service.
func (d *S3) PresignGet(ctx context.Context, location string, ttl time.Duration) (string, error) {
	key, err := d.blobKey(location)
	if err != nil {
		return "", err
	}
	req, err := d.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: &key}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("blobstore: s3 presign: %w", err)
	}
	return req.URL, nil
}

// UploadsIdleSince implements UploadLister. A session's last activity is the newest of
// its marker, its tails, its multipart uploads' initiation and their parts. Sessions that
// only buffer bytes in memory have stored nothing and are not listed; committed blobs are
// not sessions and are never listed.
func (d *S3) UploadsIdleSince(ctx context.Context, before time.Time) ([]string, error) {
	last := map[string]time.Time{}
	seen := func(h string, t time.Time) {
		if cur, ok := last[h]; !ok || t.After(cur) {
			last[h] = t
		}
	}
	prefix := d.prefix + "uploads/"
	p := s3.NewListObjectsV2Paginator(d.client, &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s3Err("list uploads", err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if len(name) < 32 || !isHandle(name[:32]) {
				continue
			}
			h := name[:32]
			if name == h || isTailKey(h, "uploads/"+name) {
				seen(h, aws.ToTime(o.LastModified))
			}
		}
	}
	blobs := d.prefix + "blobs/"
	mp := s3.NewListMultipartUploadsPaginator(d.client, &s3.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: &blobs})
	for mp.HasMorePages() {
		page, err := mp.NextPage(ctx)
		if err != nil {
			return nil, s3Err("list multipart uploads", err)
		}
		for _, u := range page.Uploads {
			h := handleOfLocation(strings.TrimPrefix(aws.ToString(u.Key), d.prefix))
			if h == "" {
				continue
			}
			t := aws.ToTime(u.Initiated)
			if t.Before(before) {
				// Started long ago, but maybe still being written: its newest part counts.
				pp := s3.NewListPartsPaginator(d.client, &s3.ListPartsInput{Bucket: &d.bucket, Key: u.Key, UploadId: u.UploadId})
				for pp.HasMorePages() {
					parts, err := pp.NextPage(ctx)
					if apiCode(err) == "NoSuchUpload" {
						break
					}
					if err != nil {
						return nil, s3Err("list parts", err)
					}
					for _, part := range parts.Parts {
						if pt := aws.ToTime(part.LastModified); pt.After(t) {
							t = pt
						}
					}
				}
			}
			seen(h, t)
		}
	}
	var out []string
	for h, t := range last {
		if t.Before(before) {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out, nil
}

// getInto reads the object key, which must hold exactly len(dst) bytes, into dst.
func (d *S3) getInto(ctx context.Context, key string, dst []byte) error {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: &key})
	if isNoSuchKey(err) {
		// Superseded by a newer state, or its session was committed by a request that
		// died before the database recorded it: either way the session cannot finish.
		return fmt.Errorf("%w: upload segment %s is gone", ErrUploadCorrupt, key)
	}
	if err != nil {
		return s3Err("read upload segment", err)
	}
	defer out.Body.Close()
	if _, err := io.ReadFull(out.Body, dst); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: segment %s is shorter than its recorded %d bytes", ErrUploadCorrupt, key, len(dst))
		}
		return s3Err("read upload segment", err)
	}
	if n, _ := out.Body.Read(make([]byte, 1)); n != 0 {
		return fmt.Errorf("%w: segment %s is longer than its recorded %d bytes", ErrUploadCorrupt, key, len(dst))
	}
	return nil
}

func (d *S3) put(ctx context.Context, key string, body []byte) error {
	_, err := d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &d.bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
	}, d.bodyOpts...)
	return s3Err("put object", err)
}

// ---------------------------------------------------------------- state

type s3Part struct {
	N    int32  `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

type s3Seg struct {
	Key  string `json:"key"` // relative to the prefix
	Size int64  `json:"size"`
}

type s3State struct {
	UploadID string   `json:"uploadId,omitempty"`
	Parts    []s3Part `json:"parts,omitempty"`
	Tail     []s3Seg  `json:"tail,omitempty"`
	// Stale are tail segments this state superseded (folded into a part or a bigger
	// segment); whoever rewinds to this state may delete them.
	Stale []string `json:"stale,omitempty"`
}

// parseState decodes and checks a recorded state; it returns the byte count it describes.
// A state never names objects of another session, so a damaged row cannot make a writer
// read or delete them.
func parseState(handle string, raw []byte) (s3State, int64, error) {
	var st s3State
	if len(raw) == 0 {
		return st, 0, nil
	}
	bad := func(format string, args ...any) (s3State, int64, error) {
		return s3State{}, 0, fmt.Errorf("%w: upload %s: state %s", ErrUploadCorrupt, handle, fmt.Sprintf(format, args...))
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return bad("is not JSON: %v", err)
	}
	if (st.UploadID == "") != (len(st.Parts) == 0) {
		return bad("has parts without a multipart upload or the reverse")
	}
	var total int64
	for i, p := range st.Parts {
		if p.N < 1 || p.N > s3MaxParts || (i > 0 && p.N <= st.Parts[i-1].N) || p.ETag == "" ||
			p.Size < S3MinPartSize || p.Size > S3MaxPartSize {
			return bad("has an invalid part %+v", p)
		}
		total += p.Size
	}
	for _, s := range st.Tail {
		if !isTailKey(handle, s.Key) || s.Size <= 0 {
			return bad("has an invalid tail segment %+v", s)
		}
		total += s.Size
	}
	for _, k := range st.Stale {
		if !isTailKey(handle, k) {
			return bad("has an invalid stale key %q", k)
		}
	}
	return st, total, nil
}

// ---------------------------------------------------------------- upload

type s3Upload struct {
	d      *S3
	ctx    context.Context // not cancelled with the request: bytes that arrived must land
	handle string
	key    string // the blob object / multipart upload key

	uploadID string
	parts    []s3Part
	segs     []s3Seg
	segBytes int64
	stale    []string
	// buf holds bytes written since the last Sync that are not in a part; between calls
	// segBytes+len(buf) < partSize.
	buf  []byte
	size int64

	marked  bool  // the session marker exists
	rewound bool  // the session's bytes are known (new, or rewound after OpenUpload)
	done    bool  // committed or closed
	err     error // a failed store: the upload can no longer be trusted
}

var errNotRewound = errors.New("blobstore: s3 upload opened but not rewound to its recorded state")

func (u *s3Upload) Handle() string { return u.handle }
func (u *s3Upload) Size() int64    { return u.size }

func (u *s3Upload) usable() error {
	switch {
	case u.done:
		return fmt.Errorf("blobstore: s3 upload %s already closed or committed", u.handle)
	case u.err != nil:
		return u.err
	case !u.rewound:
		return errNotRewound
	}
	return nil
}

func (u *s3Upload) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(u.ctx, s3OpTimeout)
}

// reserve makes room for n bytes in buf. Small uploads get small buffers; a buffer
// approaching a part is a pooled one of exactly partSize.
func (u *s3Upload) reserve(n int) {
	if n <= cap(u.buf) {
		return
	}
	ps := int(u.d.partSize)
	var nb []byte
	switch c := max(n, 2*cap(u.buf), 64<<10); {
	case n > ps: // a tail left by a replica configured with a bigger part size
		nb = make([]byte, len(u.buf), n)
	case c >= ps/2:
		nb = (*u.d.bufs.Get().(*[]byte))[:len(u.buf)]
	default:
		nb = make([]byte, len(u.buf), c)
	}
	copy(nb, u.buf)
	u.releaseBuf()
	u.buf = nb
}

func (u *s3Upload) releaseBuf() {
	if cap(u.buf) == int(u.d.partSize) {
		b := u.buf[:0]
		u.d.bufs.Put(&b)
	}
	u.buf = nil
}

// Write implements Upload. Full parts are uploaded as they fill; a failure poisons the
// upload (nothing more is recorded from it) and reports no bytes written.
func (u *s3Upload) Write(p []byte) (int, error) {
	if err := u.usable(); err != nil {
		return 0, err
	}
	total := len(p)
	for len(p) > 0 {
		if room := u.d.partSize - u.segBytes - int64(len(u.buf)); room > 0 {
			n := int(min(room, int64(len(p))))
			u.reserve(len(u.buf) + n)
			u.buf = append(u.buf, p[:n]...)
			p = p[n:]
			u.size += int64(n)
		}
		if u.segBytes+int64(len(u.buf)) >= u.d.partSize {
			if err := u.flushPart(); err != nil {
				u.err = err
				return 0, err
			}
		}
	}
	return total, nil
}

// prependSegs reads segments segs[from:] back in front of buf and drops them (they become
// stale once a state without them is recorded).
func (u *s3Upload) prependSegs(from int) error {
	var n int64
	for _, s := range u.segs[from:] {
		n += s.Size
	}
	if n > 0 {
		old := len(u.buf)
		u.reserve(int(n) + old)
		u.buf = u.buf[:int(n)+old]
		copy(u.buf[n:], u.buf[:old])
		off := int64(0)
		for _, s := range u.segs[from:] {
			ctx, cancel := u.opCtx()
			err := u.d.getInto(ctx, u.d.prefix+s.Key, u.buf[off:off+s.Size])
			cancel()
			if err != nil {
				return err
			}
			off += s.Size
		}
	}
	for _, s := range u.segs[from:] {
		u.stale = append(u.stale, s.Key)
	}
	u.segs = u.segs[:from]
	u.segBytes -= n
	return nil
}

// flushPart uploads the segments and buffered bytes as the next part.
func (u *s3Upload) flushPart() error {
	if err := u.prependSegs(0); err != nil {
		return err
	}
	if err := u.uploadPart(u.buf); err != nil {
		return err
	}
	u.buf = u.buf[:0]
	return nil
}

func (u *s3Upload) uploadPart(body []byte) error {
	ctx, cancel := u.opCtx()
	defer cancel()
	n := int32(1)
	if len(u.parts) > 0 {
		n = u.parts[len(u.parts)-1].N + 1
	}
	if n > s3MaxParts {
		return fmt.Errorf("blobstore: s3 upload %s: more than %d parts of %d bytes; configure a bigger part size", u.handle, s3MaxParts, u.d.partSize)
	}
	if u.uploadID == "" {
		out, err := u.d.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: &u.d.bucket, Key: &u.key, ContentType: aws.String("application/octet-stream"),
		})
		if err != nil {
			return s3Err("create multipart upload", err)
		}
		u.uploadID = aws.ToString(out.UploadId)
	}
	out, err := u.d.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &u.d.bucket, Key: &u.key, UploadId: &u.uploadID, PartNumber: aws.Int32(n),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
	}, u.d.bodyOpts...)
	if apiCode(err) == "NoSuchUpload" {
		return fmt.Errorf("%w: upload %s: multipart upload is gone: %w", ErrUploadCorrupt, u.handle, err)
	}
	if err != nil {
		return s3Err("upload part", err)
	}
	u.parts = append(u.parts, s3Part{N: n, ETag: aws.ToString(out.ETag), Size: int64(len(body))})
	return nil
}

// Sync implements Upload: the bytes written so far are in parts and tail segments that
// State describes.
func (u *s3Upload) Sync() error {
	if err := u.usable(); err != nil {
		return err
	}
	if err := u.sync(); err != nil {
		u.err = err
		return err
	}
	return nil
}

func (u *s3Upload) sync() error {
	if !u.marked {
		ctx, cancel := u.opCtx()
		err := u.d.put(ctx, u.d.prefix+markerKey(u.handle), nil)
		cancel()
		if err != nil {
			return err
		}
		u.marked = true
	}
	if len(u.buf) == 0 {
		u.releaseBuf()
		return nil
	}
	// Fold trailing segments no bigger than what is being written into the new segment,
	// so segment sizes keep more than doubling towards the front.
	from, merged := len(u.segs), int64(len(u.buf))
	for from > 0 && u.segs[from-1].Size <= merged {
		from--
		merged += u.segs[from].Size
	}
	if err := u.prependSegs(from); err != nil {
		return err
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return err
	}
	seg := s3Seg{Key: "uploads/" + u.handle + tailInfix + hex.EncodeToString(r[:]), Size: int64(len(u.buf))}
	ctx, cancel := u.opCtx()
	err := u.d.put(ctx, u.d.prefix+seg.Key, u.buf)
	cancel()
	if err != nil {
		return err
	}
	u.segs = append(u.segs, seg)
	u.segBytes += seg.Size
	u.releaseBuf()
	return nil
}

// State implements Upload.
func (u *s3Upload) State() []byte {
	if !u.rewound {
		return nil
	}
	b, _ := json.Marshal(s3State{UploadID: u.uploadID, Parts: u.parts, Tail: u.segs, Stale: u.stale})
	return b
}

// Rewind implements Upload. The state must describe exactly offset bytes. Tail segments
// are read lazily (when they fill a part, or at Commit), so rewinding costs no reads; the
// segments the state superseded are deleted.
func (u *s3Upload) Rewind(offset int64, state []byte) error {
	if u.done {
		return fmt.Errorf("blobstore: s3 upload %s already closed or committed", u.handle)
	}
	st, total, err := parseState(u.handle, state)
	if err != nil {
		return err
	}
	if total != offset {
		return fmt.Errorf("%w: upload %s: state holds %d bytes, %d acknowledged", ErrUploadCorrupt, u.handle, total, offset)
	}
	u.releaseBuf()
	u.uploadID, u.parts, u.segs, u.segBytes = st.UploadID, st.Parts, st.Tail, total
	for _, p := range st.Parts {
		u.segBytes -= p.Size
	}
	u.stale, u.size, u.err, u.rewound = nil, offset, nil, true
	// Best effort: what is left over is removed at Commit or AbortUpload.
	for _, k := range st.Stale {
		ctx, cancel := u.opCtx()
		_ = u.d.deleteKey(ctx, u.d.prefix+k)
		cancel()
	}
	return nil
}

// Reader implements Upload while the bytes are still tail segments and buffer. Bytes
// already sent as multipart parts cannot be read back from S3 before the upload is
// completed: the error then wraps errors.ErrUnsupported, and callers verify such blobs
// after Commit instead.
func (u *s3Upload) Reader(ctx context.Context) (io.ReadCloser, error) {
	if err := u.usable(); err != nil {
		return nil, err
	}
	if len(u.parts) > 0 {
		return nil, fmt.Errorf("blobstore: s3 upload %s: %d bytes already stored as multipart parts cannot be re-read before Commit: %w",
			u.handle, u.size-u.segBytes-int64(len(u.buf)), errors.ErrUnsupported)
	}
	r := &segsReader{d: u.d, ctx: ctx, segs: slices.Clone(u.segs), tail: bytes.NewReader(bytes.Clone(u.buf))}
	return r, nil
}

// segsReader reads tail segments one after the other, then a copy of the buffer.
type segsReader struct {
	d    *S3
	ctx  context.Context
	segs []s3Seg
	body io.ReadCloser
	left int64
	tail *bytes.Reader
}

func (r *segsReader) Read(p []byte) (int, error) {
	for {
		if r.body == nil {
			if len(r.segs) == 0 {
				return r.tail.Read(p)
			}
			key := r.d.prefix + r.segs[0].Key
			out, err := r.d.client.GetObject(r.ctx, &s3.GetObjectInput{Bucket: &r.d.bucket, Key: &key})
			if err != nil {
				return 0, s3Err("read upload segment", err)
			}
			r.body, r.left = out.Body, r.segs[0].Size
			r.segs = r.segs[1:]
		}
		if r.left == 0 {
			r.body.Close()
			r.body = nil
			continue
		}
		n, err := r.body.Read(p[:min(int64(len(p)), r.left)])
		r.left -= int64(n)
		if errors.Is(err, io.EOF) {
			if r.left > 0 {
				return n, fmt.Errorf("%w: upload segment shorter than recorded", ErrUploadCorrupt)
			}
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (r *segsReader) Close() error {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	return nil
}

// Close implements Upload: the written bytes are synced, so the session can be resumed
// from State; the buffer is released.
func (u *s3Upload) Close() error {
	if u.done {
		return nil
	}
	err := u.err
	if u.rewound && err == nil {
		err = u.Sync()
	}
	u.releaseBuf()
	u.done = true
	return err
}

// Discard implements Upload: nothing buffered is written; the session's objects go.
func (u *s3Upload) Discard(ctx context.Context) error {
	u.releaseBuf()
	u.done = true
	return u.d.AbortUpload(ctx, u.handle)
}

// Commit implements Upload: the rest becomes the last part and the multipart upload is
// completed at the blob's key (a blob smaller than one part is a single PutObject). The
// session's marker and tails are deleted.
func (u *s3Upload) Commit(ctx context.Context, _ digest.Digest) (string, error) {
	if err := u.usable(); err != nil {
		return "", err
	}
	u.done = true
	defer u.releaseBuf()
	if err := u.prependSegs(0); err != nil {
		return "", err
	}
	location := blobLocation(u.handle)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s3OpTimeout)
	defer cancel()
	if len(u.parts) == 0 {
		if err := u.d.put(cctx, u.key, u.buf); err != nil {
			return "", err
		}
	} else {
		if len(u.buf) > 0 {
			if err := u.uploadPart(u.buf); err != nil {
				return "", err
			}
		}
		parts := make([]types.CompletedPart, len(u.parts))
		for i, p := range u.parts {
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(p.N), ETag: aws.String(p.ETag)}
		}
		_, err := u.d.client.CompleteMultipartUpload(cctx, &s3.CompleteMultipartUploadInput{
			Bucket: &u.d.bucket, Key: &u.key, UploadId: &u.uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		switch apiCode(err) {
		case "":
		case "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload":
			// A part was replaced by a writer whose state was never recorded, or the
			// upload is gone: the acknowledged bytes no longer exist as recorded.
			return "", fmt.Errorf("%w: upload %s: complete: %w", ErrUploadCorrupt, u.handle, err)
		default:
			return "", s3Err("complete multipart upload", err)
		}
		// Defence in depth (S3 already checked every part's ETag); skipped when the
		// service does not answer, since the upload cannot be completed twice.
		head, err := u.d.client.HeadObject(cctx, &s3.HeadObjectInput{Bucket: &u.d.bucket, Key: &u.key})
		if err == nil && aws.ToInt64(head.ContentLength) != u.size {
			_ = u.d.deleteKey(cctx, u.key)
			return "", fmt.Errorf("%w: upload %s: completed object has %d bytes, want %d",
				ErrUploadCorrupt, u.handle, aws.ToInt64(head.ContentLength), u.size)
		}
	}
	if u.marked {
		// Best effort: leftovers are found by UploadsIdleSince and removed by AbortUpload.
		_ = u.d.deleteSessionObjects(cctx, u.handle)
	}
	return location, nil
}

// ---------------------------------------------------------------- blob

// s3Blob reads a committed blob with ranged GETs: Seek only moves the position, and the
// next Read issues a GET from there to the end.
type s3Blob struct {
	d    *S3
	ctx  context.Context
	key  string
	size int64
	pos  int64
	body io.ReadCloser
	left int64 // bytes body has yet to deliver
}

func (b *s3Blob) Size() int64 { return b.size }

func (b *s3Blob) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.body == nil {
		out, err := b.d.client.GetObject(b.ctx, &s3.GetObjectInput{
			Bucket: &b.d.bucket, Key: &b.key, Range: aws.String(fmt.Sprintf("bytes=%d-%d", b.pos, b.size-1)),
		})
		if isNoSuchKey(err) {
			return 0, fmt.Errorf("%w: %s", ErrNotFound, b.key)
		}
		if err != nil {
			return 0, s3Err("read blob", err)
		}
		b.body, b.left = out.Body, b.size-b.pos
	}
	n, err := b.body.Read(p[:min(int64(len(p)), b.left)])
	b.pos += int64(n)
	b.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if b.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	if b.left == 0 {
		b.closeBody()
	}
	return n, err
}

func (b *s3Blob) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.pos + offset
	case io.SeekEnd:
		abs = b.size + offset
	default:
		return 0, errors.New("blobstore: s3 blob: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("blobstore: s3 blob: negative position")
	}
	if abs != b.pos {
		b.closeBody()
		b.pos = abs
	}
	return abs, nil
}

func (b *s3Blob) closeBody() {
	if b.body == nil {
		return
	}
	if b.left <= s3DrainLimit {
		// Read to the end (and EOF) so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(b.body, s3DrainLimit+1))
	}
	b.body.Close()
	b.body = nil
}

func (b *s3Blob) Close() error {
	b.closeBody()
	return nil
}
