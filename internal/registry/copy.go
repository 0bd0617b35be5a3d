package registry

import (
	"hash"
	"io"
	"sync"
)

// Upload bodies are copied into the blob store while being hashed. Hashing sha256 and
// writing the file each take about as long as the other, so for large bodies they run on
// two cores: this goroutine reads and writes, another hashes the buffers it has written.
const (
	pipelineBuf     = 1 << 20
	pipelineBuffers = 4
	// pipelineMinSize is the smallest declared body worth pipelining (unknown sizes are).
	pipelineMinSize = 8 << 20
	// maxPipelined bounds concurrent pipelined copies, and so their buffer memory.
	maxPipelined = 4
)

var (
	copyBuffers         = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
	pipelineBuffersPool = sync.Pool{New: func() any { b := make([]byte, pipelineBuf); return &b }}
	pipelineSlots       = make(chan struct{}, maxPipelined)
)

// copyHashed copies src to dst and feeds exactly the bytes written to h. It returns how
// many bytes were written (and hashed). Eager copies write each read as it arrives,
// for a reader following dst (a mirror's waiting clients, whose first byte must not
// wait for a whole buffer from a slow upstream); otherwise buffers are filled first, so
// the store sees few large writes.
func copyHashed(dst io.Writer, h hash.Hash, src io.Reader, sizeHint int64, eager bool) (int64, error) {
	if sizeHint >= 0 && sizeHint < pipelineMinSize {
		return copySerial(dst, h, src)
	}
	select {
	case pipelineSlots <- struct{}{}:
		defer func() { <-pipelineSlots }()
	default:
		return copySerial(dst, h, src)
	}
	free := make(chan *[]byte, pipelineBuffers)
	for range pipelineBuffers {
		free <- pipelineBuffersPool.Get().(*[]byte)
	}
	// A buffer is filled by one or more writes (eager copies) and goes back to free once
	// the hasher has seen all of them: done marks its last piece.
	type piece struct {
		data []byte
		done *[]byte
	}
	work := make(chan piece, 4*pipelineBuffers)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for p := range work {
			h.Write(p.data)
			if p.done != nil {
				free <- p.done
			}
		}
	}()
	var written int64
	var err error
	for stop := false; !stop; {
		buf := <-free
		off, size := 0, len(*buf)
		for off < size && !stop {
			var n int
			var rerr error
			if eager {
				n, rerr = src.Read((*buf)[off:])
			} else {
				n, rerr = fill(src, (*buf)[off:])
			}
			if n > 0 {
				if _, werr := dst.Write((*buf)[off : off+n]); werr != nil {
					err, stop = werr, true
					break
				}
				written += int64(n)
				if off+n < size && rerr == nil {
					work <- piece{data: (*buf)[off : off+n]}
				} else {
					work <- piece{data: (*buf)[off : off+n], done: buf}
					buf = nil
				}
				off += n
			}
			switch {
			case rerr == io.EOF:
				stop = true
			case rerr != nil:
				err, stop = rerr, true
			}
		}
		if buf != nil {
			work <- piece{done: buf}
		}
	}
	close(work)
	<-hashed
	for range pipelineBuffers {
		pipelineBuffersPool.Put(<-free)
	}
	return written, err
}

func copySerial(dst io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	return io.CopyBuffer(io.MultiWriter(dst, h), src, *bp)
}

// fill reads until buf is full or src fails, returning src's own error (io.EOF at the
// clean end): unlike io.ReadFull it keeps a body's genuine io.ErrUnexpectedEOF.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
