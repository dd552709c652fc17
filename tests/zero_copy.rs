//! Views share storage and allocate nothing; adopted caller memory is never copied and its
//! release runs exactly once. One test per process, since allocator counters are global.

use deepseek::backend::ForeignOwner;
use deepseek::backend::cpu::alloc::CPU_ALLOCATOR;
use deepseek::{DType, Device, Tensor};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn views_are_zero_copy_and_adopted_buffers_are_released_once() {
    // Views: same storage, allocator untouched.
    let base = Tensor::from_slice(&(0..24).map(|x| x as f32).collect::<Vec<_>>(), &[2, 3, 4]).unwrap();
    let before = CPU_ALLOCATOR.stats();
    let views = [
        base.reshape(&[6, 4]).unwrap(),
        base.view(&[4, -1]).unwrap(),
        base.permute(&[2, 0, 1]).unwrap(),
        base.transpose(0, 2).unwrap(),
        base.slice(2, 1, 4, 2).unwrap(),
        base.unsqueeze(0).unwrap().expand(&[5, 2, 3, 4]).unwrap(),
        base.unsqueeze(1).unwrap().squeeze(1).unwrap(),
        base.contiguous().unwrap(),
        base.cast(DType::F32).unwrap(),
    ];
    let after = CPU_ALLOCATOR.stats();
    assert_eq!((after.bytes_in_use, after.allocations), (before.bytes_in_use, before.allocations), "views allocated");
    for v in &views {
        assert!(v.shares_storage(&base));
    }
    // A copy, by contrast, allocates and does not share.
    let copy = views[3].contiguous().unwrap();
    assert!(!copy.shares_storage(&base));
    assert!(CPU_ALLOCATOR.stats().allocations > after.allocations);

    // Adopted memory: the tensor reads the caller's bytes in place, writes are visible,
    // and the release runs once, after the last view is gone.
    let released = Arc::new(AtomicUsize::new(0));
    let mut data: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0];
    let ptr = data.as_mut_ptr();
    let counter = released.clone();
    let owner = ForeignOwner::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let allocs = CPU_ALLOCATOR.stats().allocations;
    let t = unsafe { Tensor::from_foreign(ptr.cast(), 16, DType::F32, &[2, 2], owner) }.unwrap();
    assert_eq!(CPU_ALLOCATOR.stats().allocations, allocs, "adoption must not allocate");
    assert_eq!(t.host_ptr().unwrap(), ptr as *const u8);
    unsafe { *ptr.add(3) = 40.0 };
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 40.0]);
    let v = t.transpose(0, 1).unwrap();
    drop(t);
    assert_eq!(released.load(Ordering::SeqCst), 0, "a view keeps adopted memory alive");
    assert_eq!(v.contiguous().unwrap().to_vec::<f32>().unwrap(), vec![1.0, 3.0, 2.0, 40.0]);
    drop(v);
    assert_eq!(released.load(Ordering::SeqCst), 1);

    // Failure paths release too, exactly once.
    for (nbytes, shape, offset) in [(12usize, [2usize, 2], 0usize), (16, [2, 2], 1)] {
        let counter = released.clone();
        let owner = ForeignOwner::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let before = released.load(Ordering::SeqCst);
        let p = unsafe { ptr.cast::<u8>().add(offset) };
        assert!(unsafe { Tensor::from_foreign(p, nbytes, DType::F32, &shape, owner) }.is_err());
        assert_eq!(released.load(Ordering::SeqCst), before + 1);
    }
    drop(data);
    let _ = Device::Cpu;
}
