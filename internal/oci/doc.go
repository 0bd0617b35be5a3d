// Package oci owns the vocabulary of the OCI distribution and image specs as Berth uses
// it: repository names, tags, digests, manifest media types, manifest parsing and
// validation, and the byte ranges of blob requests and chunked uploads. It has no I/O.
package oci
