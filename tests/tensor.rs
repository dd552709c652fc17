//! Tensors through the Rust API: creation, views against reference values, casts, contiguity, devices.

use deepseek::{DType, Device, Error, Generator, Tensor};
use half::{bf16, f16};

fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_slice(&(0..n).map(|x| x as f32).collect::<Vec<_>>(), shape).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.cast(DType::F32).unwrap().to_vec::<f32>().unwrap()
}

#[test]
fn creation() {
    assert_eq!(values(&Tensor::zeros(&[2, 2], DType::I64, Device::Cpu).unwrap()), vec![0.0; 4]);
    assert_eq!(values(&Tensor::ones(&[3], DType::BF16, Device::Cpu).unwrap()), vec![1.0; 3]);
    assert_eq!(values(&Tensor::full(&[2], -2.5, DType::F16, Device::Cpu).unwrap()), vec![-2.5; 2]);
    assert_eq!(values(&Tensor::arange(0.0, 5.0, 2.0, DType::I32, Device::Cpu).unwrap()), vec![0.0, 2.0, 4.0]);
    assert_eq!(values(&Tensor::arange(3.0, 0.0, -1.0, DType::F64, Device::Cpu).unwrap()), vec![3.0, 2.0, 1.0]);
    assert_eq!(Tensor::arange(0.0, 0.0, 1.0, DType::F32, Device::Cpu).unwrap().numel(), 0);
    assert!(Tensor::arange(0.0, 1.0, 0.0, DType::F32, Device::Cpu).is_err());
    let scalar = Tensor::from_slice(&[7i64], &[]).unwrap();
    assert_eq!((scalar.ndim(), scalar.numel(), scalar.item().unwrap()), (0, 1, 7.0));
    assert!(Tensor::from_slice(&[1.0f32, 2.0], &[3]).is_err());
    let e = Tensor::from_bytes(&[2u8], DType::Bool, &[1], Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("bool"), "{e}");
}

#[test]
fn random_is_reproducible_and_documented() {
    let a = Tensor::rand_normal(&[1000], 0.0, 1.0, DType::F64, Device::Cpu, &mut Generator::new(42)).unwrap();
    let b = Tensor::rand_normal(&[1000], 0.0, 1.0, DType::F64, Device::Cpu, &mut Generator::new(42)).unwrap();
    let (va, vb) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    assert_eq!(va, vb);
    assert_eq!(va[0], 0.41471975043153003, "first normal of seed 42 (ALGORITHMS.md §1.4)");
    let mean = va.iter().sum::<f64>() / 1000.0;
    let var = va.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 999.0;
    assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.15, "mean {mean} var {var}");
    let u = Tensor::rand_uniform(&[1000], -1.0, 3.0, DType::F32, Device::Cpu, &mut Generator::new(1)).unwrap();
    let vu = u.to_vec::<f32>().unwrap();
    assert!(vu.iter().all(|&x| (-1.0..3.0).contains(&x)));
    let c = Tensor::rand_normal(&[1000], 0.0, 1.0, DType::F64, Device::Cpu, &mut Generator::new(43)).unwrap();
    assert_ne!(c.to_vec::<f64>().unwrap(), va);
    assert!(matches!(
        Tensor::rand_uniform(&[2], 0.0, 1.0, DType::I32, Device::Cpu, &mut Generator::new(1)),
        Err(Error::InvalidDtype { .. })
    ));
}

#[test]
fn views_read_the_right_elements() {
    let t = iota(&[2, 3, 4]);
    // permute (2,0,1): out[k][i][j] = t[i][j][k]
    let p = t.permute(&[2, 0, 1]).unwrap();
    assert_eq!(p.shape(), &[4, 2, 3]);
    assert_eq!(values(&p)[..6], [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);
    // slice with step along the last axis, then a transposed copy
    let s = t.slice(-1, 1, 4, 2).unwrap();
    assert_eq!(values(&s), vec![1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0, 19.0, 21.0, 23.0]);
    let m = iota(&[2, 3]).transpose(0, 1).unwrap();
    assert!(!m.is_contiguous());
    let c = m.contiguous().unwrap();
    assert!(c.is_contiguous() && !c.shares_storage(&m));
    assert_eq!(values(&c), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    // reshape of a non-viewable layout copies; view refuses
    assert_eq!(values(&m.reshape(&[6]).unwrap()), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert!(matches!(m.view(&[6]), Err(Error::ShapeMismatch { .. })));
    // expand broadcasts without copying
    let col = iota(&[3, 1]);
    let e = col.expand(&[2, 3, 2]).unwrap();
    assert_eq!(e.strides(), &[0, 1, 0]);
    assert_eq!(values(&e), vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
    // squeeze/unsqueeze
    assert_eq!(col.squeeze(1).unwrap().shape(), &[3]);
    assert_eq!(col.unsqueeze(0).unwrap().shape(), &[1, 3, 1]);
    // views of views compose
    let vv = t.transpose(0, 2).unwrap().slice(0, 1, 3, 1).unwrap().reshape(&[-1]).unwrap();
    assert_eq!(vv.numel(), 12);
    assert_eq!(values(&vv)[..3], [1.0, 13.0, 5.0]);
}

#[test]
fn large_strided_copy_runs_in_parallel_and_matches_serial_reference() {
    let t = iota(&[512, 300]);
    let tt = t.transpose(0, 1).unwrap().contiguous().unwrap();
    let got = tt.to_vec::<f32>().unwrap();
    for (idx, &g) in got.iter().enumerate().step_by(997) {
        let (i, j) = (idx / 512, idx % 512);
        assert_eq!(g, (j * 300 + i) as f32);
    }
}

#[test]
fn casts_between_all_dtypes() {
    let src = Tensor::from_slice(&[-2.75f64, -0.5, 0.0, 1.5, 300.0, f64::NAN, f64::INFINITY], &[7]).unwrap();
    let i32s = src.cast(DType::I32).unwrap().to_vec::<i32>().unwrap();
    assert_eq!(i32s, vec![-2, 0, 0, 1, 300, 0, i32::MAX]);
    let u8s = src.cast(DType::U8).unwrap().to_vec::<u8>().unwrap();
    assert_eq!(u8s, vec![0, 0, 0, 1, 255, 0, 255]);
    let bools = src.cast(DType::Bool).unwrap().to_vec::<bool>().unwrap();
    assert_eq!(bools, vec![true, true, false, true, true, true, true]);
    let halves = src.cast(DType::F16).unwrap().to_vec::<f16>().unwrap();
    assert!(halves[5].is_nan() && halves[6].is_infinite());
    let b16 = src.cast(DType::BF16).unwrap().to_vec::<bf16>().unwrap();
    assert_eq!(b16[4].to_f64(), 300.0);
    // Every pair round-trips small integers exactly, through strided views too.
    let small = Tensor::from_slice(&[0i32, 1, 2, 3, 4, 5], &[2, 3]).unwrap().transpose(0, 1).unwrap();
    for a in DType::ALL {
        for b in DType::ALL {
            let back = small.cast(a).unwrap().cast(b).unwrap().cast(DType::I64).unwrap().to_vec::<i64>().unwrap();
            let expect: Vec<i64> =
                if a == DType::Bool || b == DType::Bool { vec![0, 1, 1, 1, 1, 1] } else { vec![0, 3, 1, 4, 2, 5] };
            assert_eq!(back, expect, "{a} -> {b}");
        }
    }
    // f32 <-> f16 on a long contiguous row takes the vectorised path; results must match
    // the scalar rule bit for bit.
    let xs: Vec<f32> = (0..4099).map(|i| (i as f32 - 2000.0) * 0.37).collect();
    let h = Tensor::from_slice(&xs, &[4099]).unwrap().cast(DType::F16).unwrap().to_vec::<f16>().unwrap();
    for (x, y) in xs.iter().zip(&h) {
        assert_eq!(f16::from_f32(*x).to_bits(), y.to_bits());
    }
}

#[test]
fn cuda_requests_fail_cleanly_without_a_gpu() {
    if deepseek::device::cuda_device_count() > 0 {
        eprintln!("skipped: a CUDA device is present, so the no-GPU error path cannot be exercised");
        return;
    }
    let e = Tensor::zeros(&[2], DType::F32, Device::Cuda(0)).unwrap_err();
    assert!(matches!(e, Error::DeviceUnavailable(_)) && e.to_string().contains("cuda:0"), "{e}");
    let e = iota(&[2]).to_device(Device::Cuda(3)).unwrap_err();
    assert!(e.to_string().contains("cuda:3"), "{e}");
    assert!(Device::from_code(1, 0).is_err());
    assert!(Device::from_code(7, 0).is_err());
}

#[test]
fn display_prints_values_shape_and_dtype() {
    let s = iota(&[2, 2]).to_string();
    assert!(s.contains("[[0.0, 1.0]") && s.contains("shape=[2, 2]") && s.contains("dtype=f32"), "{s}");
    let long = iota(&[100]).to_string();
    assert!(long.contains("...") && long.contains("99.0"), "{long}");
    let b = Tensor::from_slice(&[true, false], &[2]).unwrap().to_string();
    assert!(b.contains("true, false"), "{b}");
}

#[test]
fn overflowing_shapes_are_errors() {
    use deepseek::tensor::create::shape_from_dims;
    assert!(matches!(shape_from_dims(&[1 << 62, 1 << 62], DType::F32, "dims"), Err(Error::Overflow { .. })));
    assert!(matches!(shape_from_dims(&[1 << 61, 8], DType::F64, "dims"), Err(Error::Overflow { .. })));
    assert!(matches!(shape_from_dims(&[2, -1], DType::F32, "dims"), Err(Error::InvalidArgument { .. })));
}

#[test]
fn host_data_mut_writes_in_place_when_exclusive_and_copies_when_shared() {
    let mut t = Tensor::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let before = t.host_ptr().unwrap();
    t.host_data_mut::<f32>().unwrap()[0] = 10.0;
    assert_eq!(t.host_ptr().unwrap(), before, "an exclusive tensor is updated in place");
    let shared = t.clone();
    t.host_data_mut::<f32>().unwrap()[1] = 20.0;
    assert_ne!(t.host_ptr().unwrap(), before, "a shared tensor is copied first");
    assert_eq!(shared.to_vec::<f32>().unwrap(), vec![10.0, 2.0, 3.0]);
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![10.0, 20.0, 3.0]);
    let err = t.host_data_mut::<f64>().unwrap_err().to_string();
    assert!(err.contains("expected f64"), "{err}");
}
