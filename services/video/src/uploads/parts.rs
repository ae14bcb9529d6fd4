//! Chunk → part buffering, the pure part of an upload.
//!
//! Clients send chunks of any size; S3 wants parts of at least 5 MiB (but the last). A
//! [`PartAssembler`] holds at most one part: the bytes of the current part that are already
//! durable as staged pieces (a placeholder, read back from S3 only when the part is
//! complete) followed by the bytes received in this request. Its memory is one part,
//! whatever the chunk sizes.

use bytes::Bytes;

#[derive(Debug)]
pub struct PartAssembler {
    part_size: usize,
    /// Bytes at the start of the current part that are staged in S3, not yet read back.
    staged: usize,
    /// `staged` placeholder bytes, then the fresh bytes of this request.
    buf: Vec<u8>,
}

impl PartAssembler {
    /// `staged`: bytes of the current part already durable as pieces (`< part_size`).
    pub fn new(part_size: usize, staged: usize) -> Self {
        assert!(staged < part_size, "staged bytes fill less than a part");
        Self {
            part_size,
            staged,
            buf: Vec::new(),
        }
    }

    /// Copies as much of `chunk` as fits in the current part; returns the bytes taken.
    /// Once [`is_full`](Self::is_full), take the part before filling more.
    pub fn fill(&mut self, chunk: &[u8]) -> usize {
        if self.buf.capacity() == 0 {
            // One allocation of one part, the placeholder included.
            self.buf.reserve_exact(self.part_size);
            self.buf.resize(self.staged, 0);
        }
        let room = self.part_size - self.buf.len();
        let take = room.min(chunk.len());
        self.buf.extend_from_slice(&chunk[..take]);
        take
    }

    pub fn is_full(&self) -> bool {
        self.buf.len() == self.part_size
    }

    /// Bytes of the current part that must be read back from staged pieces.
    pub fn staged(&self) -> usize {
        self.staged
    }

    /// Bytes received in this request that are not durable yet.
    pub fn fresh(&self) -> &[u8] {
        self.buf.get(self.staged..).unwrap_or_default()
    }

    /// Where the staged bytes go when read back (before [`take_part`](Self::take_part)).
    pub fn placeholder_mut(&mut self) -> &mut [u8] {
        if self.buf.len() < self.staged {
            self.buf.resize(self.staged, 0);
        }
        &mut self.buf[..self.staged]
    }

    /// The whole current part (placeholder filled by the caller), leaving an empty one.
    pub fn take_part(&mut self) -> Bytes {
        if self.buf.len() < self.staged {
            self.buf.resize(self.staged, 0);
        }
        self.staged = 0;
        Bytes::from(std::mem::take(&mut self.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `data` in chunks of the given sizes, starting with `staged` bytes already
    /// durable (`data[..staged]`); returns the parts produced and the leftover.
    fn run(
        part_size: usize,
        staged: usize,
        data: &[u8],
        chunks: &[usize],
    ) -> (Vec<Bytes>, Vec<u8>) {
        let mut assembler = PartAssembler::new(part_size, staged);
        let mut parts = Vec::new();
        let mut rest = &data[staged..];
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap()).min(rest.len());
            let mut chunk = &rest[..n];
            rest = &rest[n..];
            while !chunk.is_empty() {
                let taken = assembler.fill(chunk);
                chunk = &chunk[taken..];
                assert!(assembler.buf.len() <= part_size, "never more than a part");
                if assembler.is_full() {
                    let staged = assembler.staged();
                    let offset = parts.len() * part_size;
                    assembler
                        .placeholder_mut()
                        .copy_from_slice(&data[offset..offset + staged]);
                    parts.push(assembler.take_part());
                }
            }
        }
        (parts, assembler.fresh().to_vec())
    }

    #[test]
    fn any_chunking_yields_full_parts_then_the_leftover() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for chunks in [&[1][..], &[7, 300], &[999], &[1000], &[4096, 3], &[10_000]] {
            let (parts, leftover) = run(1000, 0, &data, chunks);
            assert_eq!(parts.len(), 10, "{chunks:?}");
            assert!(parts.iter().all(|p| p.len() == 1000));
            assert!(leftover.is_empty());
            let joined: Vec<u8> = parts.iter().flat_map(|p| p.to_vec()).collect();
            assert_eq!(joined, data);
        }
    }

    #[test]
    fn staged_bytes_are_read_back_into_the_first_part_only() {
        let data: Vec<u8> = (0..2_500u32).map(|i| (i % 13) as u8).collect();
        let (parts, leftover) = run(1000, 400, &data, &[333]);
        assert_eq!(parts.len(), 2);
        let mut joined: Vec<u8> = parts.iter().flat_map(|p| p.to_vec()).collect();
        joined.extend_from_slice(&leftover);
        assert_eq!(joined, data);
        assert_eq!(leftover.len(), 500);
    }

    #[test]
    fn fresh_excludes_the_placeholder() {
        let mut assembler = PartAssembler::new(100, 30);
        assert_eq!(assembler.fill(b"abc"), 3);
        assert_eq!(assembler.fresh(), b"abc");
        assert_eq!(assembler.staged(), 30);
        assert!(!assembler.is_full());
    }

    #[test]
    fn nothing_allocated_until_bytes_arrive() {
        let assembler = PartAssembler::new(8 << 20, 0);
        assert_eq!(assembler.buf.capacity(), 0);
        assert!(assembler.fresh().is_empty());
    }
}
