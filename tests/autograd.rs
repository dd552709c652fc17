//! Eager autograd: gradients against finite differences, accumulation, seeds, no_grad, and error paths.

use deepseek::autograd::{backward_with, gradcheck, no_grad};
use deepseek::{DType, Device, Error, Generator, Tensor};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

const TOL: f64 = 1e-6;

#[test]
fn arithmetic_with_broadcasting_and_views() {
    let (a, b) = (randn(&[3, 4], 1), randn(&[4], 2));
    let err = gradcheck(|x| x[0].mul(&x[1])?.add(&x[0])?.sub(&x[1])?.div(&x[1].exp()?), &[a, b], 1e-6).unwrap();
    assert!(err < TOL, "err {err}");
    // Non-contiguous inputs: permuted, sliced, expanded.
    let c = randn(&[4, 3, 2], 3);
    let err = gradcheck(
        |x| x[0].permute(&[2, 0, 1])?.slice(1, 1, 4, 2)?.mul(&x[0].permute(&[2, 0, 1])?.slice(1, 0, 2, 1)?),
        &[c],
        1e-6,
    )
    .unwrap();
    assert!(err < TOL, "err {err}");
    let d = randn(&[3, 1], 4);
    let err = gradcheck(|x| x[0].expand(&[2, 3, 5])?.exp()?.sum(&[0, 2], true), &[d], 1e-6).unwrap();
    assert!(err < TOL, "err {err}");
}

#[test]
fn reductions_and_reshapes() {
    let a = randn(&[2, 3, 4], 5);
    let err =
        gradcheck(|x| x[0].sum(&[0, 2], false)?.reshape(&[3, 1])?.transpose(0, 1), std::slice::from_ref(&a), 1e-6)
            .unwrap();
    assert!(err < TOL, "err {err}");
    let err = gradcheck(|x| x[0].unsqueeze(1)?.squeeze(1)?.view(&[6, 4])?.neg(), &[a], 1e-6).unwrap();
    assert!(err < TOL, "err {err}");
}

#[test]
fn gradients_accumulate_and_reset() {
    let w = Tensor::from_slice(&[1.0f64, 2.0, 3.0], &[3]).unwrap();
    w.set_requires_grad(true);
    for _ in 0..2 {
        w.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    }
    assert_eq!(w.grad().unwrap().unwrap().to_vec::<f64>().unwrap(), vec![4.0, 8.0, 12.0]);
    w.zero_grad();
    assert!(w.grad().unwrap().is_none());
}

#[test]
fn seeds_no_grad_detach_and_errors() {
    let x = randn(&[2, 2], 9);
    x.set_requires_grad(true);
    let y = x.mul(&x).unwrap();
    let e = y.backward().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { arg: "seed", .. }), "{e}");
    let seed = Tensor::ones(&[2, 2], DType::F64, Device::Cpu).unwrap();
    backward_with(&y, Some(&seed), true).unwrap();
    backward_with(&y, Some(&seed), false).unwrap();
    let twice = backward_with(&y, Some(&seed), false).unwrap_err().to_string();
    assert!(twice.contains("second time") && twice.contains("mul"), "{twice}");

    let z = no_grad(|| x.mul(&x).unwrap());
    assert!(!z.requires_grad() && z.is_leaf());
    assert!(z.sum_all().unwrap().backward().is_err());
    assert!(!x.detach().requires_grad());
    // Integer tensors never carry gradients.
    let i = Tensor::from_slice(&[1i64, 2], &[2]).unwrap();
    assert!(!i.add(&i).unwrap().requires_grad());
}
