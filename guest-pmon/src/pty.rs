//! Pseudo-terminals (`/dev/ptmx` and `/dev/pts/N`, pty(7)): a pair whose
//! master end a program like `script`, `expect`, a terminal emulator or
//! CPython's `pty` module drives, and whose slave end another program
//! takes for its terminal. Between them sits Linux's line discipline
//! (N_TTY) as far as programs see it: the slave's termios (Linux's
//! defaults for a pty: ICRNL, IXON; OPOST, ONLCR; ICANON, ECHO, ISIG,
//! IEXTEN and the ECHO variants), canonical lines with erase, kill and
//! end-of-file, echo (control characters as `^C`), ISIG's characters
//! turned into signals for the terminal's foreground group, output
//! processing (`\n` as `\r\n`), raw mode (VMIN), the window size.
//! Decided: no flow control (IXON's ^S/^Q pass as data), no parity or
//! speeds (kept and read back, with no effect), no packet mode, and VTIME
//! is not timed (a raw read with VMIN 0 returns at once).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

const ICRNL: u32 = 0o400;
const INLCR: u32 = 0o100;
const IGNCR: u32 = 0o200;
const ISTRIP: u32 = 0o40;
const IXON: u32 = 0o2000;
const OPOST: u32 = 0o1;
const ONLCR: u32 = 0o4;
const OCRNL: u32 = 0o10;
const ISIG: u32 = 0o1;
const ICANON: u32 = 0o2;
const ECHO: u32 = 0o10;
const ECHOE: u32 = 0o20;
const ECHOK: u32 = 0o40;
const ECHONL: u32 = 0o100;
const NOFLSH: u32 = 0o200;
const ECHOCTL: u32 = 0o1000;
const ECHOKE: u32 = 0o4000;
const IEXTEN: u32 = 0o100000;

const VINTR: usize = 0;
const VQUIT: usize = 1;
const VERASE: usize = 2;
const VKILL: usize = 3;
const VEOF: usize = 4;
pub const VMIN: usize = 6;
const VSUSP: usize = 10;
const VEOL: usize = 11;
const VWERASE: usize = 14;
const VEOL2: usize = 16;

/// The longest canonical line (Linux's N_TTY_BUF_SIZE less one).
pub const MAX_LINE: usize = 4095;
/// What each direction holds before its writer waits.
pub const CAPACITY: usize = 65536;

/// The kernel's `struct termios` (TCGETS, TCSETS): 36 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; 19],
}

impl Termios {
    /// A pty slave's settings when it is made (Linux's `tty_std_termios`
    /// with the pty driver's c_cflag: B38400, CS8, CREAD).
    pub fn slave() -> Termios {
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: 0o17 | 0o60 | 0o200,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc: [
                3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0,
            ],
        }
    }

    /// The master's: raw, as Linux's pty master.
    pub fn master() -> Termios {
        Termios {
            iflag: 0,
            oflag: 0,
            lflag: 0,
            ..Termios::slave()
        }
    }

    pub fn to_bytes(&self) -> [u8; 36] {
        let mut b = [0u8; 36];
        for (i, v) in [self.iflag, self.oflag, self.cflag, self.lflag]
            .iter()
            .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        b[16] = self.line;
        b[17..36].copy_from_slice(&self.cc);
        b
    }

    pub fn from_bytes(b: &[u8; 36]) -> Termios {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut cc = [0u8; 19];
        cc.copy_from_slice(&b[17..36]);
        Termios {
            iflag: word(0),
            oflag: word(4),
            cflag: word(8),
            lflag: word(12),
            line: b[16],
            cc,
        }
    }

    pub fn canonical(&self) -> bool {
        self.lflag & ICANON != 0
    }
}

/// A signal the line discipline raises for the foreground group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Raised {
    Interrupt,
    Quit,
    Suspend,
}

/// One pseudo-terminal.
#[derive(Debug)]
pub struct Pty {
    pub termios: Termios,
    pub master_termios: Termios,
    /// rows, columns, x pixels, y pixels.
    pub winsize: [u16; 4],
    /// Until unlockpt, the slave cannot be opened (EIO).
    pub locked: bool,
    /// The slave's owner and group, and its permission bits: as a devpts
    /// mounted with gid=5,mode=620 (Debian's) gives them, the owner the
    /// one who opened /dev/ptmx; chown and chmod of /dev/pts/N change
    /// them (sshd gives a login's terminal to its user).
    pub owner: (u32, u32),
    pub perm: u32,
    /// Open files of each end.
    pub masters: u32,
    pub slaves: u32,
    /// A slave was opened once: its last close is a hang-up the master
    /// reads as EIO.
    pub slave_opened: bool,
    /// The session it is the controlling terminal of, and the group in
    /// the foreground there (ISIG's signals go to it).
    pub session: Option<u32>,
    pub foreground: Option<u32>,
    /// Input the slave may read: bytes, and (canonical) the lengths of
    /// the complete lines among them, oldest first (0: an end of file).
    input: VecDeque<u8>,
    lines: VecDeque<usize>,
    /// The canonical line being edited.
    line: Vec<u8>,
    /// Output the master may read (the slave's writes and the echoes).
    output: VecDeque<u8>,
}

/// The group a new terminal's slave gets (Debian's `tty`).
pub const TTY_GROUP: u32 = 5;

/// What a slave read finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Data(Vec<u8>),
    /// Nothing yet: wait (or EAGAIN).
    Wait,
    /// The end of the file: 0.
    End,
}

impl Pty {
    pub fn new() -> Pty {
        Pty {
            termios: Termios::slave(),
            master_termios: Termios::master(),
            winsize: [0; 4],
            locked: true,
            owner: (0, TTY_GROUP),
            perm: 0o620,
            masters: 1,
            slaves: 0,
            slave_opened: false,
            session: None,
            foreground: None,
            input: VecDeque::new(),
            lines: VecDeque::new(),
            line: Vec::new(),
            output: VecDeque::new(),
        }
    }

    /// New settings (TCSETS and its kin): leaving canonical mode hands
    /// the line being edited to the reader as it is; entering it makes
    /// what was typed raw one line.
    pub fn set_termios(&mut self, t: Termios) {
        let was = self.termios.canonical();
        self.termios = t;
        if was && !t.canonical() {
            self.input.extend(self.line.drain(..));
            self.lines.clear();
        } else if !was && t.canonical() && !self.input.is_empty() {
            self.lines.clear();
            self.lines.push_back(self.input.len());
        }
    }

    /// TCFLSH's input part: what the slave has not read goes.
    pub fn flush_input(&mut self) {
        self.input.clear();
        self.lines.clear();
        self.line.clear();
    }

    pub fn flush_output(&mut self) {
        self.output.clear();
    }

    /// Bytes the master wrote (typed at the terminal): taken as far as
    /// there is room, through the input settings; the signals they raise.
    pub fn master_write(&mut self, data: &[u8]) -> (usize, Vec<Raised>) {
        let mut raised = Vec::new();
        let mut taken = 0;
        for &byte in data {
            if self.input.len() + self.line.len() >= CAPACITY {
                break;
            }
            taken += 1;
            if let Some(sig) = self.input_byte(byte) {
                raised.push(sig);
            }
        }
        (taken, raised)
    }

    fn input_byte(&mut self, mut c: u8) -> Option<Raised> {
        let t = self.termios;
        if t.iflag & ISTRIP != 0 {
            c &= 0x7f;
        }
        if c == b'\r' {
            if t.iflag & IGNCR != 0 {
                return None;
            }
            if t.iflag & ICRNL != 0 {
                c = b'\n';
            }
        } else if c == b'\n' && t.iflag & INLCR != 0 {
            c = b'\r';
        }
        let special = |i: usize| t.cc[i] != 0 && c == t.cc[i];
        if t.lflag & ISIG != 0 {
            let sig = if special(VINTR) {
                Some(Raised::Interrupt)
            } else if special(VQUIT) {
                Some(Raised::Quit)
            } else if special(VSUSP) {
                Some(Raised::Suspend)
            } else {
                None
            };
            if let Some(sig) = sig {
                if t.lflag & NOFLSH == 0 {
                    self.flush_input();
                }
                self.echo(c);
                return Some(sig);
            }
        }
        if !t.canonical() {
            self.input.push_back(c);
            self.echo(c);
            return None;
        }
        if special(VERASE) || (t.lflag & IEXTEN != 0 && special(VWERASE)) {
            let word = !special(VERASE);
            let mut erased = 0;
            while let Some(&last) = self.line.last() {
                if word && erased > 0 && last == b' ' {
                    break;
                }
                if !(word && erased == 0 && last == b' ') {
                    erased += 1;
                }
                self.line.pop();
                if t.lflag & ECHO != 0 && t.lflag & ECHOE != 0 {
                    self.echo_raw(b"\x08 \x08");
                }
                if !word {
                    break;
                }
            }
            return None;
        }
        if special(VKILL) {
            let n = self.line.len();
            self.line.clear();
            if t.lflag & ECHO != 0 {
                if t.lflag & ECHOKE != 0 {
                    for _ in 0..n {
                        self.echo_raw(b"\x08 \x08");
                    }
                } else if t.lflag & ECHOK != 0 {
                    self.echo(c);
                    self.echo(b'\n');
                }
            }
            return None;
        }
        if special(VEOF) {
            // The line as it is, or an end of file on an empty one.
            let n = self.line.len();
            self.input.extend(self.line.drain(..));
            self.lines.push_back(n);
            return None;
        }
        let ends = c == b'\n' || special(VEOL) || special(VEOL2);
        if self.line.len() >= MAX_LINE && !ends {
            return None;
        }
        self.line.push(c);
        if c == b'\n' && t.lflag & ECHO == 0 && t.lflag & ECHONL != 0 {
            self.output_bytes(b"\n");
        } else {
            self.echo(c);
        }
        if ends {
            let n = self.line.len();
            self.input.extend(self.line.drain(..));
            self.lines.push_back(n);
        }
        None
    }

    /// A typed byte shown back, control characters as `^X` (ECHOCTL).
    fn echo(&mut self, c: u8) {
        let l = self.termios.lflag;
        if l & ECHO == 0 {
            return;
        }
        if l & ECHOCTL != 0 && (c < 0x20 || c == 0x7f) && c != b'\n' && c != b'\t' {
            self.echo_raw(&[b'^', c ^ 0x40]);
        } else {
            self.output_bytes(&[c]);
        }
    }

    fn echo_raw(&mut self, bytes: &[u8]) {
        self.output.extend(bytes);
    }

    /// Bytes on their way to the master through the output settings.
    fn output_bytes(&mut self, data: &[u8]) {
        let o = self.termios.oflag;
        for &c in data {
            if o & OPOST != 0 && c == b'\n' && o & ONLCR != 0 {
                self.output.extend(b"\r\n");
            } else if o & OPOST != 0 && c == b'\r' && o & OCRNL != 0 {
                self.output.push_back(b'\n');
            } else {
                self.output.push_back(c);
            }
        }
    }

    /// What the slave wrote, as far as there is room (0: wait).
    pub fn slave_write(&mut self, data: &[u8]) -> usize {
        let room = CAPACITY.saturating_sub(self.output.len());
        let n = data.len().min(room / 2);
        self.output_bytes(&data[..n]);
        n
    }

    /// A read of the slave of at most `len` bytes: one line at most in
    /// canonical mode; in raw mode what there is, once VMIN bytes are (or
    /// at once with VMIN 0). A hung-up terminal reads the end of file.
    pub fn slave_read(&mut self, len: usize) -> Read {
        if self.termios.canonical() {
            let Some(&n) = self.lines.front() else {
                return if self.masters == 0 {
                    Read::End
                } else {
                    Read::Wait
                };
            };
            if n == 0 {
                self.lines.pop_front();
                return Read::End;
            }
            let take = n.min(len);
            let data: Vec<u8> = self.input.drain(..take).collect();
            if take == n {
                self.lines.pop_front();
            } else if let Some(front) = self.lines.front_mut() {
                *front -= take;
            }
            return Read::Data(data);
        }
        let min = self.termios.cc[VMIN] as usize;
        if self.input.is_empty() || self.input.len() < min.min(len) {
            // Decided: VTIME is not timed; with VMIN 0 a read returns at
            // once, as with VTIME 0.
            return if self.masters == 0 {
                Read::End
            } else if min == 0 {
                Read::Data(Vec::new())
            } else {
                Read::Wait
            };
        }
        let take = self.input.len().min(len);
        Read::Data(self.input.drain(..take).collect())
    }

    /// A read of the master: the output there is (None: nothing yet).
    pub fn master_read(&mut self, len: usize) -> Option<Vec<u8>> {
        if self.output.is_empty() {
            return None;
        }
        let take = self.output.len().min(len);
        Some(self.output.drain(..take).collect())
    }

    /// Whether the slave has something for a read (or its end).
    pub fn slave_readable(&self) -> bool {
        let ready = if self.termios.canonical() {
            !self.lines.is_empty()
        } else {
            !self.input.is_empty()
        };
        ready || self.masters == 0
    }

    /// Whether the slave has hung up for the master: opened once, closed
    /// by all (its reads are EIO once the output is read).
    pub fn slave_gone(&self) -> bool {
        self.slave_opened && self.slaves == 0
    }

    pub fn master_readable(&self) -> bool {
        !self.output.is_empty() || self.slave_gone()
    }

    pub fn master_writable(&self) -> bool {
        self.input.len() + self.line.len() < CAPACITY
    }

    pub fn slave_writable(&self) -> bool {
        self.output.len() + 2 <= CAPACITY
    }

    /// FIONREAD of the slave (what a read would take now) and of the
    /// master.
    pub fn slave_pending(&self) -> usize {
        if self.termios.canonical() {
            self.lines.front().copied().unwrap_or(0)
        } else {
            self.input.len()
        }
    }

    pub fn master_pending(&self) -> usize {
        self.output.len()
    }
}

impl Default for Pty {
    fn default() -> Pty {
        Pty::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened() -> Pty {
        let mut p = Pty::new();
        p.locked = false;
        p.slaves = 1;
        p.slave_opened = true;
        p
    }

    fn all_output(p: &mut Pty) -> Vec<u8> {
        p.master_read(usize::MAX).unwrap_or_default()
    }

    #[test]
    fn a_canonical_line_is_echoed_and_read_whole() {
        let mut p = opened();
        assert_eq!(p.master_write(b"hel"), (3, Vec::new()));
        assert_eq!(p.slave_read(100), Read::Wait, "no line yet");
        p.master_write(b"lo\r");
        assert_eq!(all_output(&mut p), b"hello\r\n", "echo, ONLCR");
        assert_eq!(p.slave_read(3), Read::Data(b"hel".to_vec()));
        assert_eq!(p.slave_read(100), Read::Data(b"lo\n".to_vec()), "ICRNL");
        // Erase and kill.
        p.master_write(b"abx\x7fc\n");
        assert_eq!(p.slave_read(100), Read::Data(b"abc\n".to_vec()));
        p.master_write(b"junk\x15ok\n");
        assert_eq!(p.slave_read(100), Read::Data(b"ok\n".to_vec()));
        // End of file: a line without its newline, then an empty read.
        all_output(&mut p);
        p.master_write(b"part\x04\x04");
        assert_eq!(p.slave_read(100), Read::Data(b"part".to_vec()));
        assert_eq!(p.slave_read(100), Read::End);
        assert_eq!(p.slave_read(100), Read::Wait);
    }

    #[test]
    fn output_becomes_crlf_and_control_characters_echo_as_carets() {
        let mut p = opened();
        assert_eq!(p.slave_write(b"a\nb"), 3);
        assert_eq!(all_output(&mut p), b"a\r\nb");
        let (_, raised) = p.master_write(b"x\x03");
        assert_eq!(raised, vec![Raised::Interrupt]);
        assert_eq!(all_output(&mut p), b"x^C");
        assert_eq!(p.slave_read(10), Read::Wait, "the line was flushed");
        assert_eq!(
            p.master_write(b"\x1c\x1a").1,
            vec![Raised::Quit, Raised::Suspend]
        );
    }

    #[test]
    fn raw_mode_passes_bytes_at_once() {
        let mut p = opened();
        p.master_write(b"ab");
        let mut raw = p.termios;
        raw.lflag &= !(ICANON | ECHO | ISIG);
        raw.iflag &= !ICRNL;
        raw.oflag &= !OPOST;
        p.set_termios(raw);
        assert_eq!(
            p.slave_read(10),
            Read::Data(b"ab".to_vec()),
            "the line so far"
        );
        all_output(&mut p);
        p.master_write(b"\r\x03");
        assert_eq!(p.slave_read(10), Read::Data(b"\r\x03".to_vec()));
        assert_eq!(p.master_read(10), None, "no echo");
        p.slave_write(b"\n");
        assert_eq!(all_output(&mut p), b"\n");
        raw.cc[VMIN] = 0;
        p.set_termios(raw);
        assert_eq!(p.slave_read(10), Read::Data(Vec::new()), "VMIN 0: at once");
    }

    #[test]
    fn hang_ups_and_the_termios_layout() {
        let mut p = opened();
        p.slave_write(b"bye");
        p.slaves = 0;
        assert!(p.master_readable() && p.slave_gone());
        assert_eq!(p.master_read(10), Some(b"bye".to_vec()));
        let mut q = opened();
        q.masters = 0;
        assert_eq!(q.slave_read(10), Read::End);
        let t = Termios::slave();
        assert_eq!(Termios::from_bytes(&t.to_bytes()), t);
        let b = t.to_bytes();
        assert_eq!(&b[..4], &0x500u32.to_le_bytes());
        assert_eq!(&b[12..16], &0x8a3bu32.to_le_bytes());
        assert_eq!(b[17 + VINTR], 3);
    }
}
