//! ARM PL011 UART driver (polled): the kernel console. Used at its linear-map VA
//! (KERNEL_OFFSET + 0x0900_0000), mapped Device-nGnRnE and execute-never.

use crate::memory::{KERNEL_OFFSET, UART_PA};

const DR: usize = 0x00;
const FR: usize = 0x18;
const IBRD: usize = 0x24;
const FBRD: usize = 0x28;
const LCR_H: usize = 0x2c;
const CR: usize = 0x30;
const IMSC: usize = 0x38;
const ICR: usize = 0x44;

const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const FR_BUSY: u32 = 1 << 3;

/// A PL011 at a fixed MMIO address.
pub struct Pl011 {
    base: usize,
}

/// The console UART.
pub static UART: Pl011 = Pl011 { base: (KERNEL_OFFSET + UART_PA) as usize };

impl Pl011 {
    fn reg(&self, offset: usize) -> *mut u32 { (self.base + offset) as *mut u32 }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `base` is the UART's mapped MMIO range and `offset` a register in it.
        unsafe { self.reg(offset).read_volatile() }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as above.
        unsafe { self.reg(offset).write_volatile(value) }
    }

    /// 115200 8N1 with FIFOs, interrupts masked, transmitter and receiver on.
    pub fn init(&self) {
        while self.read(FR) & FR_BUSY != 0 {}
        self.write(CR, 0);
        self.write(ICR, 0x7ff);
        self.write(IBRD, 13); // 24 MHz / (16 * 115200) = 13.02
        self.write(FBRD, 1);
        self.write(LCR_H, (0b11 << 5) | (1 << 4));
        self.write(IMSC, 0);
        self.write(CR, (1 << 0) | (1 << 8) | (1 << 9));
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn put(&self, byte: u8) {
        while self.read(FR) & FR_TXFF != 0 {}
        self.write(DR, byte as u32);
    }

    /// Whether a received byte is waiting (nothing is consumed).
    pub fn has_input(&self) -> bool {
        self.read(FR) & FR_RXFE == 0
    }

    /// A received byte, if one is waiting.
    pub fn try_get(&self) -> Option<u8> {
        if self.read(FR) & FR_RXFE != 0 { None } else { Some(self.read(DR) as u8) }
    }

    /// Waits for a received byte.
    pub fn get(&self) -> u8 {
        loop {
            if let Some(byte) = self.try_get() {
                return byte;
            }
            core::hint::spin_loop();
        }
    }
}
