package proxy

import "github.com/berth-registry/berth/internal/spool"

// flight is one upstream blob download shared by every client that asks for the blob
// while it runs (package spool): the last byte is held back until the digest is
// verified, so no client ever receives a complete body that does not match its digest.
type flight = spool.Flight

// Stream is a client's view of a blob being fetched from an upstream.
type Stream = spool.Stream
